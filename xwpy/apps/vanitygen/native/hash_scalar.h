/* SHA-256 (FIPS 180-4) and RIPEMD-160 (ISO/IEC 10118-3) compression functions, one message at a
 * time. Message words are host-order 32-bit integers (SHA-256 reads bytes big-endian, RIPEMD-160
 * little-endian; the callers do the conversion once). */

#ifndef XWPY_HASH_SCALAR_H
#define XWPY_HASH_SCALAR_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
/* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
static const uint32_t SHA256_IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static const uint32_t RMD_IV[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
static const uint8_t RMD_RL[80] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8,
    3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12,
    1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2,
    4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13,
};
static const uint8_t RMD_RR[80] = {
    5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12,
    6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2,
    15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13,
    8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14,
    12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11,
};
static const uint8_t RMD_SL[80] = {
    11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8,
    7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12,
    11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5,
    11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12,
    9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6,
};
static const uint8_t RMD_SR[80] = {
    8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6,
    9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11,
    9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5,
    15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8,
    8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11,
};
static const uint32_t RMD_KL[5] = {0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E};
static const uint32_t RMD_KR[5] = {0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define BSWAP32(x) ((((x) >> 24) & 0xffu) | (((x) >> 8) & 0xff00u) | (((x) << 8) & 0xff0000u) | ((x) << 24))

/* RIPEMD-160's five boolean functions; f(0..4) on the left line, f(4..0) on the right. */
#define RMD_F0(x, y, z) ((x) ^ (y) ^ (z))
#define RMD_F1(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define RMD_F2(x, y, z) (((x) | ~(y)) ^ (z))
#define RMD_F3(x, y, z) (((x) & (z)) | ((y) & ~(z)))
#define RMD_F4(x, y, z) ((x) ^ ((y) | ~(z)))

static void sha256_block(uint32_t s[8], const uint32_t in[16]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = in[i];
    for (int i = 16; i < 64; i++) {
        uint32_t a = w[i - 15], b = w[i - 2];
        w[i] = w[i - 16] + (ROR32(a, 7) ^ ROR32(a, 18) ^ (a >> 3)) + w[i - 7] +
               (ROR32(b, 17) ^ ROR32(b, 19) ^ (b >> 10));
    }
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA256_K[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

#define RMD_STEP(F, A, B, C, D, E, X, K, S) \
    do { uint32_t t_ = A + F(B, C, D) + (X) + (K); t_ = ROL32(t_, S) + E; \
         A = E; E = D; D = ROL32(C, 10); C = B; B = t_; } while (0)

static void rmd160_block(uint32_t h[5], const uint32_t x[16]) {
    uint32_t al = h[0], bl = h[1], cl = h[2], dl = h[3], el = h[4];
    uint32_t ar = h[0], br = h[1], cr = h[2], dr = h[3], er = h[4];
    int j = 0;
    for (; j < 16; j++) {
        RMD_STEP(RMD_F0, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[0], RMD_SL[j]);
        RMD_STEP(RMD_F4, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[0], RMD_SR[j]);
    }
    for (; j < 32; j++) {
        RMD_STEP(RMD_F1, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[1], RMD_SL[j]);
        RMD_STEP(RMD_F3, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[1], RMD_SR[j]);
    }
    for (; j < 48; j++) {
        RMD_STEP(RMD_F2, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[2], RMD_SL[j]);
        RMD_STEP(RMD_F2, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[2], RMD_SR[j]);
    }
    for (; j < 64; j++) {
        RMD_STEP(RMD_F3, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[3], RMD_SL[j]);
        RMD_STEP(RMD_F1, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[3], RMD_SR[j]);
    }
    for (; j < 80; j++) {
        RMD_STEP(RMD_F4, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[4], RMD_SL[j]);
        RMD_STEP(RMD_F0, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[4], RMD_SR[j]);
    }
    uint32_t t = h[1] + cl + dr;
    h[1] = h[2] + dl + er;
    h[2] = h[3] + el + ar;
    h[3] = h[4] + al + br;
    h[4] = h[0] + bl + cr;
    h[0] = t;
}

/* One-shot SHA-256 of a short byte string (used only for the rare exact check). */
static void sha256_bytes(const unsigned char *data, size_t len, unsigned char out[32]) {
    uint32_t s[8], w[16];
    unsigned char buf[128] = {0};
    size_t nblk = (len + 9 + 63) / 64;
    memcpy(buf, data, len);
    buf[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) buf[nblk * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    memcpy(s, SHA256_IV, sizeof s);
    for (size_t b = 0; b < nblk; b++) {
        for (int i = 0; i < 16; i++) {
            const unsigned char *p = buf + b * 64 + 4 * i;
            w[i] = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        }
        sha256_block(s, w);
    }
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s[i] >> 8);
        out[4 * i + 3] = (unsigned char)s[i];
    }
}

#endif
