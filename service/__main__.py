"""`python -m service`: the draft-check API under uvicorn (see service/app.py, service/config.py)."""
from __future__ import annotations

import logging
import os
import sys


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")          # model weights never come from a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import uvicorn

    from service.app import create_app
    from service.config import from_args
    from transforms.records import ConfigError

    config = from_args(argv)
    logging.basicConfig(level=config.log_level.upper(), format="%(message)s", stream=sys.stderr)
    for noisy in ("elastic_transport", "urllib3", "sentence_transformers", "httpx", "trafilatura"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # uvicorn's access log is off: the app logs one JSON line per request itself (no query strings).
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level, access_log=False,
                timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
