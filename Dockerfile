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

# The datasets, fetched and decoded at build time: the galleries work at once and the Train page can train.
RUN python -c "from core.data import load_dataset; [load_dataset(n, s, download=True) for n in \
    ('cifar10', 'mnist', 'fashion_mnist') for s in ('test', 'train')]" \
    && rm -f /home/user/data/cifar-10-python.tar.gz

# A public Space: any visitor can start a training run, so the server caps every run (core.train.config.
# ServerLimits, enforced in the job manager, not only in the form), and each run is a child process under a
# hard memory limit, so a run that outgrows it ends, not the server. The minutes cap is the real bound on a
# run: a capped run's learning-rate schedule decays by the clock, so any preset, the 25-epoch ones included,
# ends at 8 minutes as a finished model. Epochs and images are capped to what every preset asks for (60 epochs:
# "Your images", a few dozen pictures a class); 12M
# parameters admit ResNet-18 at its width, and 6,000 MB of estimated peak memory the largest preset (the
# binned colorizer, about 4.8 GB by bench/memory_estimate.py) beside the web server in the Space's 16 GB.
# A "Your images" run may bring 1,000 files and 100 MB: ten classes of 100 phone photos, not a disk's worth.
ENV CIFAR_LAB_MAX_EPOCHS=60 \
    CIFAR_LAB_MAX_MINUTES=8 \
    CIFAR_LAB_MAX_TRAIN_IMAGES=48000 \
    CIFAR_LAB_MAX_PARAMS=12000000 \
    CIFAR_LAB_MAX_MEMORY_MB=6000 \
    CIFAR_LAB_MAX_UPLOAD_FILES=1000 \
    CIFAR_LAB_MAX_UPLOAD_MB=100 \
    STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=false
# XSRF protection is off only here: the Space shows the app in an iframe on huggingface.co, where browsers
# drop Streamlit's third-party XSRF cookie and every upload fails with "403". See README, "Reliability".

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", \
     "--server.headless=true", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false"]
