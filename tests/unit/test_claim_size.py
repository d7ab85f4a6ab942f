"""The worker's claim size: doubles while full claims run quick, back to one after a slow run."""

from pipectl.worker import next_claim_size


def test_a_full_claim_of_quick_runs_doubles_up_to_the_most() -> None:
    sizes = [1]
    for _ in range(7):
        sizes.append(next_claim_size(sizes[-1], full=True, all_quick=True, most=32))
    assert sizes == [1, 2, 4, 8, 16, 32, 32, 32]


def test_a_claim_that_found_fewer_jobs_keeps_its_size() -> None:
    assert next_claim_size(8, full=False, all_quick=True, most=32) == 8


def test_a_slow_run_goes_back_to_one() -> None:
    assert next_claim_size(16, full=True, all_quick=False, most=32) == 1
    assert next_claim_size(16, full=False, all_quick=False, most=32) == 1


def test_a_most_of_one_never_batches() -> None:
    assert next_claim_size(1, full=True, all_quick=True, most=1) == 1
