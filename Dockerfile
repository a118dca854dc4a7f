# CIFAR Lab as a Hugging Face Docker Space (sdk: docker, app_port: 8501).
FROM python:3.11-slim

# HF Spaces run the container as user 1000; files it writes must belong to it.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CIFAR_LAB_DATA=/home/user/data \
    CIFAR_LAB_HOME=/home/user/cifar_lab
WORKDIR /home/user/app

# CPU-only torch wheels: the CUDA build would add several GB for no use on a CPU Space.
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=user . .

# The CIFAR-10 test split, fetched and decoded at build time so the gallery works at once.
RUN python -c "from core.data import load_dataset; load_dataset('cifar10', 'test', download=True)" \
    && rm -f /home/user/data/cifar-10-python.tar.gz /home/user/data/cifar-10-batches-py/data_batch_*

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", \
     "--server.headless=true", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false"]
