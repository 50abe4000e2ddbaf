"""LLM-judge evaluation of two systems' summaries; see gpt_eval/ and the README section "LLM-judge evaluation".

    python scripts/gpt_eval.py --sources data/dialogsum/test.jsonl --references data/dialogsum/test.jsonl \
        --pred_a out/full/generated_predictions.txt --pred_b out/free/generated_predictions.txt \
        --name_a full --name_b free --base_url http://localhost:8000/v1 --model MODEL --output_dir out/gpt_eval
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpt_eval.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
