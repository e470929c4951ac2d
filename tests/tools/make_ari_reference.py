#!/usr/bin/env python3
"""make_ari_reference.py: writes tests/fixtures/ari.txt, the adjusted Rand index of a few
labelings computed in float64 by counting pairs directly (O(n^2): for every pair of points,
whether each labeling puts them together), independently of the contingency-table formula
the trainer uses (run/kmeans.c). Pure Python, no numpy.

Each case is one line: "n ka kb ari" then a line of n labels a, then a line of n labels b.
Run: python3 tests/tools/make_ari_reference.py > tests/fixtures/ari.txt
"""


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def ari_by_pairs(a, b):
    n = len(a)
    both = only_a = only_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            sa, sb = a[i] == a[j], b[i] == b[j]
            both += sa and sb
            only_a += sa and not sb
            only_b += sb and not sa
    pairs = n * (n - 1) / 2
    same_a, same_b = both + only_a, both + only_b
    expected = same_a * same_b / pairs
    max_index = (same_a + same_b) / 2
    if max_index == expected:
        return 1.0
    return (both - expected) / (max_index - expected)


def main():
    rng = lcg(20261202)
    cases = []
    for n, ka, kb, noise in [(50, 3, 3, 0.0), (120, 5, 4, 0.3), (200, 5, 5, 0.6), (80, 2, 6, 1.0),
                             (300, 7, 7, 0.15)]:
        a = [next(rng) % ka for _ in range(n)]
        b = [(x % kb) if (next(rng) % 1000) / 1000 >= noise else next(rng) % kb for x in a]
        cases.append((n, ka, kb, a, b))
    for n, ka, kb, a, b in cases:
        print(n, ka, kb, repr(ari_by_pairs(a, b)))
        print(" ".join(map(str, a)))
        print(" ".join(map(str, b)))


if __name__ == "__main__":
    main()
