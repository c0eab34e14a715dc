/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * rng.h - a seeded pseudo-random stream for larval's guest programs
 *
 * Header only, like tap.h.  splitmix64: one 64-bit word of state, so a
 * program can keep as many independent streams as it likes (one per kind
 * of decision, one per round) and a stream is recreated from its seed
 * alone.  That is what makes a seeded run repeatable: the same seed gives
 * the same decisions, whatever the kernel answered.
 *
 *   struct rng r = { .s = seed };
 *   rng_next(&r)           the next 64 random bits
 *   below(&r, n)           0..n-1 (0 when n is 0)
 *   chance(&r, pct)        true pct times in 100
 *   between(&r, lo, hi)    lo..hi, both included
 */
#ifndef LARVAL_RNG_H
#define LARVAL_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rng_next(r) % n) : 0;
}

static inline bool chance(struct rng *r, unsigned int pct)
{
	return below(r, 100) < pct;
}

static inline uint32_t between(struct rng *r, uint32_t lo, uint32_t hi)
{
	return lo + below(r, hi - lo + 1);
}

#endif /* LARVAL_RNG_H */
