"""Container entry of the seg-in-one image: run the task described by /in, write results to /out."""

import sys
from pathlib import Path

from ymir_base.engine.task import run_task

if __name__ == "__main__":
    sys.exit(run_task("seg-in-one", Path("/in"), Path("/out"), img_man_dir=Path("/img-man")))
