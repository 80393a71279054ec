/* SRTP contexts on libsrtp2. See md_srtp.h.
 *
 * libsrtp2 stays behind this file: nothing else in the tree includes <srtp2/srtp.h>,
 * so the crypto backend (NSS in Debian's package, OpenSSL when built with
 * deploy/build-libsrtp2-openssl.sh) can change without touching callers. */
#include "md_srtp.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include "md_rtp.h"

struct md_srtp {
    srtp_t s;
    md_srtp_dir_t dir;
    unsigned use_mki;
};

/* Boot-time only (not thread-safe): libsrtp2 refuses a second srtp_init. */
static bool initialised;

md_status_t md_srtp_global_init(void)
{
    if (initialised)
        return MD_OK;
    if (srtp_init() != srtp_err_status_ok)
        return MD_ERR_CRYPTO;
    initialised = true;
    return MD_OK;
}

void md_srtp_global_shutdown(void)
{
    if (!initialised)
        return;
    srtp_shutdown();
    initialised = false;
}

static md_status_t map_err(srtp_err_status_t e)
{
    switch (e) {
    case srtp_err_status_ok:
        return MD_OK;
    case srtp_err_status_auth_fail:
        return MD_ERR_AUTH;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        return MD_ERR_REPLAY;
    case srtp_err_status_alloc_fail:
        return MD_ERR_NOMEM;
    case srtp_err_status_bad_param:
        return MD_ERR_PARAM;
    case srtp_err_status_cipher_fail:
    case srtp_err_status_no_such_op:
    case srtp_err_status_bad_mki:
        return MD_ERR_CRYPTO;
    default:
        return MD_ERR_CRYPTO;
    }
}

static md_status_t set_policy(srtp_policy_t *pol, md_srtp_suite_t suite)
{
    switch (suite) {
    case MD_SUITE_AES_CM_128_HMAC_SHA1_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtcp);
        return MD_OK;
    case MD_SUITE_AES_CM_128_HMAC_SHA1_32:
        /* RFC 4568 section 6.2.1: SRTCP keeps the 80-bit tag with this suite */
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol->rtcp);
        return MD_OK;
    case MD_SUITE_AEAD_AES_128_GCM:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol->rtcp);
        return MD_OK;
    case MD_SUITE_AEAD_AES_256_GCM:
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol->rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&pol->rtcp);
        return MD_OK;
    default:
        return MD_ERR_PARAM;
    }
}

md_status_t md_srtp_create(struct md_srtp **out, const struct md_crypto *keys, md_srtp_dir_t dir)
{
    md_status_t st = MD_OK;
    struct md_srtp *ctx = NULL;
    srtp_policy_t pol;
    uint8_t key[MD_SRTP_MAX_MASTER_LEN];
    uint8_t mki_id[4];
    srtp_master_key_t mk, *mks[1] = {&mk};

    *out = NULL;
    memset(&pol, 0, sizeof pol);
    if ((dir != MD_SRTP_INBOUND && dir != MD_SRTP_OUTBOUND) || keys->mki_len > 4) {
        st = MD_ERR_PARAM;
        goto out;
    }
    st = set_policy(&pol, keys->suite);
    if (st != MD_OK)
        goto out;
    if (keys->key_len != md_suite_key_len(keys->suite) + md_suite_salt_len(keys->suite)) {
        st = MD_ERR_PARAM;
        goto out;
    }
    memcpy(key, keys->key, keys->key_len);

    pol.ssrc.type = dir == MD_SRTP_INBOUND ? ssrc_any_inbound : ssrc_any_outbound;
    pol.window_size = keys->wsh > 128 ? (keys->wsh < 0x7fff ? keys->wsh : 0x7fff) : 128;
    pol.allow_repeat_tx = 0;
    if (keys->mki_len > 0) {
        for (unsigned i = 0; i < keys->mki_len; i++)
            mki_id[i] = (uint8_t)(keys->mki >> (8 * (keys->mki_len - 1 - i)));
        mk.key = key;
        mk.mki_id = mki_id;
        mk.mki_size = keys->mki_len;
        pol.keys = mks;
        pol.num_master_keys = 1;
    } else {
        pol.key = key;
    }

    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        st = MD_ERR_NOMEM;
        goto out;
    }
    ctx->dir = dir;
    ctx->use_mki = keys->mki_len > 0;
    srtp_err_status_t e = srtp_create(&ctx->s, &pol);
    if (e != srtp_err_status_ok) {
        /* bad_param / cipher_fail here mean "this backend lacks the transform" */
        st = (e == srtp_err_status_bad_param || e == srtp_err_status_cipher_fail)
                 ? MD_ERR_UNSUPPORTED
                 : map_err(e);
        free(ctx);
        ctx = NULL;
        goto out;
    }
    *out = ctx;
out:
    OPENSSL_cleanse(key, sizeof key);
    return st;
}

void md_srtp_free(struct md_srtp *ctx)
{
    if (ctx == NULL)
        return;
    srtp_dealloc(ctx->s); /* wipes the session keys */
    free(ctx);
}

int md_srtp_suite_supported(md_srtp_suite_t suite)
{
    struct md_crypto c;
    memset(&c, 0, sizeof c);
    c.suite = suite;
    c.key_len = (uint8_t)(md_suite_key_len(suite) + md_suite_salt_len(suite));
    if (c.key_len == 0)
        return 0;
    for (unsigned i = 0; i < c.key_len; i++)
        c.key[i] = (uint8_t)(i * 17 + 3);
    struct md_srtp *a = NULL, *b = NULL;
    int ok = md_srtp_create(&a, &c, MD_SRTP_OUTBOUND) == MD_OK &&
             md_srtp_create(&b, &c, MD_SRTP_INBOUND) == MD_OK;
    if (ok) {
        /* creating is not enough: a backend may fail only when the cipher runs */
        uint8_t pkt[12 + 16 + MD_SRTP_MAX_TRAILER] = {0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
        size_t len = 12 + 16;
        ok = md_srtp_protect(a, pkt, &len, sizeof pkt) == MD_OK &&
             md_srtp_unprotect(b, pkt, &len) == MD_OK && len == 12 + 16;
    }
    md_srtp_free(a);
    md_srtp_free(b);
    return ok;
}

md_status_t md_srtp_protect(struct md_srtp *ctx, uint8_t *pkt, size_t *len, size_t cap)
{
    if (*len < MD_RTP_HDR_MIN)
        return MD_ERR_TRUNCATED;
    if (cap < *len + MD_SRTP_MAX_TRAILER || cap > INT_MAX)
        return MD_ERR_NOSPACE;
    int n = (int)*len;
    srtp_err_status_t e = srtp_protect_mki(ctx->s, pkt, &n, ctx->use_mki, 0);
    if (e != srtp_err_status_ok)
        return map_err(e);
    *len = (size_t)n;
    return MD_OK;
}

md_status_t md_srtp_unprotect(struct md_srtp *ctx, uint8_t *pkt, size_t *len)
{
    if (*len < MD_RTP_HDR_MIN)
        return MD_ERR_TRUNCATED;
    if (*len > INT_MAX)
        return MD_ERR_PARAM;
    int n = (int)*len;
    srtp_err_status_t e = srtp_unprotect_mki(ctx->s, pkt, &n, ctx->use_mki);
    if (e != srtp_err_status_ok)
        return map_err(e);
    *len = (size_t)n;
    return MD_OK;
}

md_status_t md_srtp_protect_rtcp(struct md_srtp *ctx, uint8_t *pkt, size_t *len, size_t cap)
{
    if (*len < 8)
        return MD_ERR_TRUNCATED;
    if (cap < *len + MD_SRTP_MAX_TRAILER || cap > INT_MAX)
        return MD_ERR_NOSPACE;
    int n = (int)*len;
    srtp_err_status_t e = srtp_protect_rtcp_mki(ctx->s, pkt, &n, ctx->use_mki, 0);
    if (e != srtp_err_status_ok)
        return map_err(e);
    *len = (size_t)n;
    return MD_OK;
}

md_status_t md_srtp_unprotect_rtcp(struct md_srtp *ctx, uint8_t *pkt, size_t *len)
{
    if (*len < 8)
        return MD_ERR_TRUNCATED;
    if (*len > INT_MAX)
        return MD_ERR_PARAM;
    int n = (int)*len;
    srtp_err_status_t e = srtp_unprotect_rtcp_mki(ctx->s, pkt, &n, ctx->use_mki);
    if (e != srtp_err_status_ok)
        return map_err(e);
    *len = (size_t)n;
    return MD_OK;
}
