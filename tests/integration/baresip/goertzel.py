"""Share of a frequency in a WAV file (Goertzel power over signal energy, per sample):
about 0.5 for a pure tone, about 0.25 each for two tones of equal level, near 0 when
absent. Usage: goertzel.py FILE SKIP_SECONDS FREQ...  ->  one "FREQ SHARE" line each."""
import math
import struct
import sys
import wave


def share(samples, rate, freq):
    k = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = energy = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
        energy += x * x
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return power / energy / len(samples) if energy > 0 else 0.0


def main():
    w = wave.open(sys.argv[1])
    rate, n = w.getframerate(), w.getnframes()
    if w.getsampwidth() != 2 or w.getnchannels() != 1:
        sys.exit("expected 16-bit mono")
    data = struct.unpack("<%dh" % n, w.readframes(n))[int(float(sys.argv[2]) * rate):]
    if len(data) < rate:
        sys.exit("less than a second of audio after the skip")
    for f in sys.argv[3:]:
        print("%s %.4f" % (f, share(data, rate, float(f))))


if __name__ == "__main__":
    main()
