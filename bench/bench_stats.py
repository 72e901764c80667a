"""Small statistics for noisy, paired measurements."""


def median(values):
    v = sorted(values)
    if not v:
        raise ValueError("median of nothing")
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def paired_ratios(values, baselines):
    """Ratio of each measurement to the baseline taken in the same round."""
    if len(values) != len(baselines):
        raise ValueError("unpaired measurements")
    return [v / b for v, b in zip(values, baselines)]


def quartiles(values):
    """(first, third) quartile, by linear interpolation between ranks."""
    v = sorted(values)

    def at(q):
        pos = q * (len(v) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    return at(0.25), at(0.75)
