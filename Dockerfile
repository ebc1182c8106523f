# One image for every process of the scaled shape (compose.yaml): runtick and the ASGI workers.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 DJANGO_DEBUG=0
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# the static files are part of the image: every worker serves the same hashed, compressed copies
RUN python manage.py collectstatic --noinput -v 0
