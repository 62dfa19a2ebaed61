"""Packs the staged Python package (python/dynamo_datafusion with the extension
module the workspace build made) into a wheel, so `pip install` installs it
without compiling anything: maturin would build the extension crate alone, with
its own feature set, and so DataFusion a second time.

Usage: make_wheel.py STAGE_DIR OUT_DIR VERSION   (prints the wheel's path)
"""

import base64
import hashlib
import os
import sys
import sysconfig
import zipfile

NAME = "dynamo_datafusion"


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main() -> None:
    stage, out_dir, version = sys.argv[1:4]
    # The extension is built for the stable ABI of Python 3.10 and later (pyo3 abi3-py310).
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    tag = f"cp310-abi3-{platform}"
    dist_info = f"{NAME}-{version}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        "Name: dynamo-datafusion\n"
        f"Version: {version}\n"
        "Summary: DynamoDB tables for datafusion-python\n"
        "Requires-Python: >=3.10\n"
        "Requires-Dist: datafusion>=55,<56\n"
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: dynamo-connector scripts\nRoot-Is-Purelib: false\nTag: {tag}\n"
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{NAME}-{version}-{tag}.whl")
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        package = os.path.join(stage, NAME)
        for root, _, files in sorted(os.walk(package)):
            for f in sorted(files):
                if f.endswith(".pyc"):
                    continue
                full = os.path.join(root, f)
                name = os.path.relpath(full, stage).replace(os.sep, "/")
                data = open(full, "rb").read()
                whl.writestr(name, data)
                records.append(f"{name},{digest(data)},{len(data)}")
        for name, text in (("METADATA", metadata), ("WHEEL", wheel)):
            data = text.encode()
            whl.writestr(f"{dist_info}/{name}", data)
            records.append(f"{dist_info}/{name},{digest(data)},{len(data)}")
        records.append(f"{dist_info}/RECORD,,")
        whl.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
    print(path)


if __name__ == "__main__":
    main()
