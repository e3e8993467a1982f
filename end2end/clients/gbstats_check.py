"""GrowthBook's statistics engine (`gbstats` from PyPI) on the inputs of an
experiment as Capstan analysed it: reads cases as JSON on stdin, writes
gbstats' figures as JSON on stdout, for the test to compare.

A case: {"kind": "binary"|"real", "alpha": 0.05, "tuning": 5000,
         "a": {"n": …, "sum": …, "sum_squares": …}, "b": {…},
         "users": [n_a, n_b, …], "weights": [w_a, w_b, …]}
Its answer: {"estimate": …, "low": …, "high": …, "p_value": …, "srm_p": …}
(the lift relative to a, as gbstats' default "relative" difference).
"""

import json
import sys

from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm


def statistic(kind, s):
    n = int(s["n"])
    if kind == "binary":
        return ProportionStatistic(n=n, sum=s["sum"])
    return SampleMeanStatistic(n=n, sum=s["sum"], sum_squares=s["sum_squares"])


def main():
    answers = []
    for case in json.load(sys.stdin):
        config = SequentialConfig(alpha=case["alpha"], sequential_tuning_parameter=case["tuning"])
        test = SequentialTwoSidedTTest(statistic(case["kind"], case["a"]), statistic(case["kind"], case["b"]), config)
        result = test.compute_result()
        answers.append(
            {
                "estimate": result.expected,
                "low": result.ci[0],
                "high": result.ci[1],
                "p_value": result.p_value,
                "srm_p": check_srm(case["users"], case["weights"]),
                "error": result.error_message,
            }
        )
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
