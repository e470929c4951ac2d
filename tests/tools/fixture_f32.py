"""fixture_f32.py: float32 helpers shared by the float64 reference generators.

The C model stores float32 parameters; a reference computed in float64 must start from the
same float32 values, so generators round what they draw through f32().
"""
import struct


def f32(x):
    """x rounded to the nearest float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


def draw(rng, n, scale):
    """n float32 values uniform in [-scale, scale] from the random.Random rng."""
    return [f32(rng.uniform(-scale, scale)) for _ in range(n)]
