# A "trainer" in awk: the score of (x, y) is its distance to (1, -2); one final report line, no Python.
BEGIN {
    score = (x - 1) ^ 2 + (y + 2) ^ 2
    printf "sweep: score=%.6f\n", score
}
