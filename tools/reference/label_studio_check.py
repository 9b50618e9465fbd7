"""Checks `infmllm export --format label-studio` output with Label Studio's own SDK: every task's predictions must
be valid for the labeling config written beside them (`--label-config`), and a prediction broken on purpose must not.

    python3 -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio-sdk==2.1.2
    infmllm export JOB --format label-studio --output tasks.json --label-config config.xml [...]
    /tmp/ls/bin/python tools/reference/label_studio_check.py tasks.json config.xml
"""

import copy
import json
import sys

from label_studio_sdk.label_interface import LabelInterface


def main(tasks_path: str, config_path: str) -> int:
    interface = LabelInterface(open(config_path, encoding="utf-8").read())
    tasks = json.load(open(tasks_path, encoding="utf-8"))
    invalid = 0
    for task in tasks:
        for prediction in task.get("predictions", []):
            errors = interface.validate_prediction(prediction, return_errors=True)
            if errors:
                invalid += 1
                print(f"{task['data'].get('image_uri')}: {errors}")
    # The check can fail: a result naming a control the config lacks is refused.
    broken = next((copy.deepcopy(p) for t in tasks for p in t.get("predictions", []) if p["result"]), None)
    if broken is not None:
        broken["result"][0]["from_name"] = "no-such-control"
        if not interface.validate_prediction(broken, return_errors=True):
            print("a broken prediction passed: the check does not check")
            return 1
    print(f"{len(tasks)} tasks, {invalid} with invalid predictions")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
