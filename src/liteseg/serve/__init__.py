"""HTTP serving: ``liteseg serve`` (FastAPI + uvicorn, the optional extra ``liteseg[serve]``).

``create_app`` builds the ASGI app around a ``Segmenter``; ``DynamicBatcher`` gathers concurrent requests into
model batches. Import ``liteseg.serve.app`` only when FastAPI is installed.
"""
