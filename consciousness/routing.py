from django.urls import path

from consciousness.consumers import EngineStreamConsumer

websocket_urlpatterns = [
    path("ws", EngineStreamConsumer.as_asgi()),
    path("ws/", EngineStreamConsumer.as_asgi()),
]
