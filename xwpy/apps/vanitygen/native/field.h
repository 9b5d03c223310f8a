/* Arithmetic modulo p = 2^256 - 2^32 - 977 on four 64-bit limbs (least significant first).
 *
 * Values are kept "weakly reduced": any 256-bit number, congruent to the true value mod p.
 * fe_normalize() brings a value into [0, p) before it is encoded, compared or tested for parity.
 * 2^256 = C (mod p) with C = 2^32 + 977, which is how products and carries are folded back. */

#ifndef XWPY_FIELD_H
#define XWPY_FIELD_H

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct { uint64_t d[4]; } fe;

#define FE_C 0x1000003D1ULL
#define FE_P0 0xFFFFFFFEFFFFFC2FULL

static inline void fe_from_be(fe *r, const unsigned char *b) {
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v = (v << 8) | b[(3 - i) * 8 + j];
        r->d[i] = v;
    }
}

static inline void fe_to_be(unsigned char *b, const fe *a) {
    for (int i = 0; i < 4; i++) {
        uint64_t v = a->d[3 - i];
        for (int j = 7; j >= 0; j--) { b[i * 8 + j] = (unsigned char)v; v >>= 8; }
    }
}

/* Add c * C to r, where the caller knows the carry out of r (c) is what overflowed 2^256. */
static inline void fe_fold(fe *r, uint64_t c) {
    while (c) {
        u128 t = (u128)c * FE_C + r->d[0];
        r->d[0] = (uint64_t)t;
        uint64_t k = (uint64_t)(t >> 64);
        for (int i = 1; i < 4; i++) {
            t = (u128)r->d[i] + k;
            r->d[i] = (uint64_t)t;
            k = (uint64_t)(t >> 64);
        }
        c = k; /* at most one more, tiny round */
    }
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    u128 t = 0;
    uint64_t k = 0;
    for (int i = 0; i < 4; i++) {
        t = (u128)a->d[i] + b->d[i] + k;
        r->d[i] = (uint64_t)t;
        k = (uint64_t)(t >> 64);
    }
    fe_fold(r, k);
}

static inline void fe_sub(fe *r, const fe *a, const fe *b) {
    /* a - b; each borrow out of 2^256 means we computed a - b + 2^256 = a - b + C + p, so take C
     * away again (which may borrow once more). */
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t ai = a->d[i], bi = b->d[i];
        uint64_t d = ai - bi - borrow;
        borrow = (ai < bi) || (ai == bi && borrow);
        r->d[i] = d;
    }
    while (borrow) {
        uint64_t ai = r->d[0];
        r->d[0] = ai - FE_C;
        borrow = ai < FE_C;
        for (int i = 1; i < 4 && borrow; i++) {
            borrow = r->d[i] == 0;
            r->d[i] -= 1;
        }
    }
}

static inline void fe_mul(fe *r, const fe *a, const fe *b) {
    uint64_t w[8] = {0};
    for (int i = 0; i < 4; i++) {
        uint64_t k = 0;
        for (int j = 0; j < 4; j++) {
            u128 t = (u128)a->d[i] * b->d[j] + w[i + j] + k;
            w[i + j] = (uint64_t)t;
            k = (uint64_t)(t >> 64);
        }
        w[i + 4] = k;
    }
    uint64_t k = 0;
    for (int i = 0; i < 4; i++) {
        u128 t = (u128)w[i + 4] * FE_C + w[i] + k;
        r->d[i] = (uint64_t)t;
        k = (uint64_t)(t >> 64);
    }
    fe_fold(r, k);
}

static inline void fe_sqr(fe *r, const fe *a) { fe_mul(r, a, a); }

static inline void fe_normalize(fe *r) {
    if (r->d[3] == ~0ULL && r->d[2] == ~0ULL && r->d[1] == ~0ULL && r->d[0] >= FE_P0) {
        /* r - p == r + C - 2^256 */
        u128 t = (u128)r->d[0] + FE_C;
        r->d[0] = (uint64_t)t;
        uint64_t k = (uint64_t)(t >> 64);
        for (int i = 1; i < 4; i++) {
            t = (u128)r->d[i] + k;
            r->d[i] = (uint64_t)t;
            k = (uint64_t)(t >> 64);
        }
    }
}

static inline int fe_is_zero(const fe *a) {
    fe t = *a;
    fe_normalize(&t);
    return (t.d[0] | t.d[1] | t.d[2] | t.d[3]) == 0;
}

/* a^(p-2) = 1/a (Fermat); a must be non-zero. p-2 = 2^256 - 2^32 - 979. */
static void fe_inv(fe *r, const fe *a) {
    static const uint64_t e[4] = {0xFFFFFFFEFFFFFC2DULL, ~0ULL, ~0ULL, ~0ULL};
    fe x = {{1, 0, 0, 0}};
    for (int i = 3; i >= 0; i--) {
        for (int bit = 63; bit >= 0; bit--) {
            fe_sqr(&x, &x);
            if ((e[i] >> bit) & 1) fe_mul(&x, &x, a);
        }
    }
    *r = x;
}

#endif
