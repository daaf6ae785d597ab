"""``python tests/serve_fake.py MODEL PORT``: the real service (create_app + uvicorn) over the test
suite's fake detector and embedder, in its own process, so a test can ``kill -9`` it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvicorn  # noqa: E402

from facerec.server import create_app  # noqa: E402
from facerec.server.protocol import uvicorn_config  # noqa: E402

import conftest  # noqa: E402,F401 - registers the fake detector and embedder

if __name__ == "__main__":
    model, port = sys.argv[1], int(sys.argv[2])
    app = create_app(model, device="cpu", workers=2)
    app.state.service.ready.wait(60)
    uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port)).run()
