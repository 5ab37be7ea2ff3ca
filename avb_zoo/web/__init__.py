"""The browser page: a static folder that samples and encodes with onnxruntime-web (``avb-zoo export-web``).

``vendor`` prepares the pinned onnxruntime-web files once (npm), ``bundle`` writes a model's page folder,
``serve`` serves it on 127.0.0.1; ``static/`` holds the page itself (index.html, app.js, stream.js).
"""
