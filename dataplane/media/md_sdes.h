/* SDES keying: the SDP a=crypto attribute (RFC 4568; AEAD suites RFC 7714).
 *
 *   a=crypto:<tag> <suite> inline:<base64(master key || master salt)>[|<lifetime>][|<mki>:<len>]
 *            [WSH=<n>]
 *
 * Supported suites: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM,
 * AEAD_AES_256_GCM. One key parameter per line (no ';'-separated key lists); of the
 * session parameters only WSH (window size hint) is accepted, any other one makes the
 * line unsupported, as RFC 4568 section 6.3 asks of a parameter we cannot honour. */
#ifndef MD_SDES_H
#define MD_SDES_H

#include <stddef.h>
#include <stdint.h>

#include "md_status.h"

typedef enum md_srtp_suite {
    MD_SUITE_AES_CM_128_HMAC_SHA1_80 = 0,
    MD_SUITE_AES_CM_128_HMAC_SHA1_32,
    MD_SUITE_AEAD_AES_128_GCM,
    MD_SUITE_AEAD_AES_256_GCM,
    MD_SUITE_COUNT
} md_srtp_suite_t;

#define MD_SRTP_MAX_MASTER_LEN 44 /* AES-256 key (32) + GCM salt (12) */
#define MD_SDES_MAX_LINE 160      /* longest value md_sdes_format writes, with margin */

struct md_crypto {
    uint32_t tag; /* 0..999999999 */
    md_srtp_suite_t suite;
    uint8_t key[MD_SRTP_MAX_MASTER_LEN]; /* master key followed by master salt */
    uint8_t key_len;                     /* md_suite_key_len(suite) + md_suite_salt_len(suite) */
    uint64_t lifetime;                   /* packets; 0 = not given */
    uint32_t mki;                        /* MKI value, meaningful when mki_len > 0 */
    uint8_t mki_len;                     /* MKI length in bytes, 0 = no MKI; at most 4 */
    uint32_t wsh;                        /* window size hint, 0 = not given */
};

/* The suite's SDP name ("AES_CM_128_HMAC_SHA1_80"), NULL for an invalid value. */
const char *md_suite_name(md_srtp_suite_t suite);
/* Master key and master salt lengths in bytes (0 for an invalid suite). */
unsigned md_suite_key_len(md_srtp_suite_t suite);
unsigned md_suite_salt_len(md_srtp_suite_t suite);
/* Looks a suite up by its SDP name (exact, case-sensitive). Returns MD_OK or
 * MD_ERR_UNSUPPORTED. */
md_status_t md_suite_from_name(const char *name, size_t len, md_srtp_suite_t *suite);

/* Parses an a=crypto value: s[0..len) is "<tag> <suite> <key-params>[ <session-params>]",
 * optionally preceded by "a=crypto:" and followed by spaces, CR or LF.
 * Contract: reads only s[0..len), never writes it, never allocates; *out is written
 * only on MD_OK (fully), otherwise left unspecified.
 * Returns MD_OK, MD_ERR_MALFORMED (syntax: tag, spaces, base64, key length, lifetime,
 * MKI) or MD_ERR_UNSUPPORTED (unknown suite, key method other than inline, several
 * keys, MKI longer than 4 bytes, a session parameter other than WSH). */
md_status_t md_sdes_parse(const char *s, size_t len, struct md_crypto *out);

/* Writes the a=crypto value for c (without "a=crypto:" and without CRLF) with a
 * terminating NUL. Returns the length written (excluding the NUL), MD_ERR_NOSPACE if
 * cap is too small (MD_SDES_MAX_LINE always suffices) or MD_ERR_PARAM for an invalid
 * suite/key length/MKI length. */
int md_sdes_format(char *buf, size_t cap, const struct md_crypto *c);

/* Fills c->key with fresh random key and salt for c->suite (OpenSSL RAND_bytes) and
 * sets key_len; tag, lifetime and MKI are left as they are. Returns MD_OK,
 * MD_ERR_PARAM (invalid suite) or MD_ERR_CRYPTO (the RNG failed). */
md_status_t md_crypto_keygen(struct md_crypto *c);

#endif
