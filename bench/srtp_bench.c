/* SRTP speed on one core: protect + unprotect pairs per second for G.711-sized RTP
 * packets (12-byte header + 160-byte payload), three ways, with ratios:
 *
 *   (a) the system libsrtp2 (Debian's package, NSS backend), loaded with dlopen so it
 *       can sit next to whatever libsrtp2 the program is linked with;
 *   (b) AES-128-CTR + HMAC-SHA1-80 through OpenSSL as a minimal SRTP transform
 *       (RFC 3711 key derivation, IV, tag, ROC), whose output is first checked to be
 *       byte-identical to (a), two ways: (b1) with the per-packet EVP re-initialisation
 *       libsrtp2's OpenSSL backend does, (b2) without any (the crypto limit);
 *   (c) the libsrtp2 the media library is linked with, through md_srtp (the product
 *       path); byte-identical output to (a) is checked for every suite. After
 *       deploy/build-libsrtp2-openssl.sh this is libsrtp2 built with its OpenSSL
 *       backend; otherwise it is the same library as (a).
 *
 *   srtp_bench [seconds per figure]        (default 1.5; best of 5 slices)
 *
 * The environment variable CN_SRTP_SYSTEM_LIB names the library for (a) (default
 * libsrtp2.so.1). Exits non-zero when an output differs. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* (b2) uses the low-level SHA-1 interface, deprecated in OpenSSL 3 but still the
   only one without a per-call provider dispatch. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/sha.h>
#include <srtp2/srtp.h>

#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"

#define PAYLOAD 160
#define PKT (12 + PAYLOAD)
#define BUF (PKT + 64)
#define VERIFY_PACKETS 2000
/* Each figure is the best of SLICES equal slices of the run: on a shared machine the
   least-disturbed slice is the closest to what the code can do. */
#define SLICES 5

static double seconds = 1.5;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The i-th packet of the test stream (seq wraps after 65536, as in a long call). */
static void make_packet(uint8_t *p, uint32_t i)
{
    p[0] = 0x80;
    p[1] = 0;
    md_rtp_set_seq(p, (uint16_t)(i + 1000));
    md_rtp_set_ts(p, i * 160u);
    md_rtp_set_ssrc(p, 0x5eed1234);
    memset(p + 12, (int)(0xd5 ^ (i & 0xff)), PAYLOAD);
}

/* ---- (a) a libsrtp2 loaded by path -------------------------------------------- */

typedef srtp_err_status_t (*init_fn)(void);
typedef srtp_err_status_t (*create_fn)(srtp_t *, const srtp_policy_t *);
typedef srtp_err_status_t (*prot_fn)(srtp_t, void *, int *);
typedef srtp_err_status_t (*dealloc_fn)(srtp_t);
typedef void (*policy_fn)(srtp_crypto_policy_t *);

struct srtp_lib {
    void *h;
    create_fn create;
    prot_fn protect, unprotect;
    dealloc_fn dealloc;
    policy_fn pol[MD_SUITE_COUNT];
};

static const char *policy_names[MD_SUITE_COUNT] = {
    "srtp_crypto_policy_set_rtp_default", /* = aes_cm_128_hmac_sha1_80 (a macro) */
    "srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32",
    "srtp_crypto_policy_set_aes_gcm_128_16_auth",
    "srtp_crypto_policy_set_aes_gcm_256_16_auth",
};

/* RTLD_DEEPBIND keeps the loaded library's internal calls inside it even if another
   libsrtp2 exported the same names; AddressSanitizer refuses it, and the executable
   exports nothing, so it can go there. */
#if defined(__SANITIZE_ADDRESS__)
#define DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL)
#else
#define DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
#endif

static int lib_open(struct srtp_lib *l, const char *path)
{
    memset(l, 0, sizeof *l);
    l->h = dlopen(path, DLOPEN_FLAGS);
    if (l->h == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return -1;
    }
    init_fn init = (init_fn)dlsym(l->h, "srtp_init");
    l->create = (create_fn)dlsym(l->h, "srtp_create");
    l->protect = (prot_fn)dlsym(l->h, "srtp_protect");
    l->unprotect = (prot_fn)dlsym(l->h, "srtp_unprotect");
    l->dealloc = (dealloc_fn)dlsym(l->h, "srtp_dealloc");
    for (unsigned s = 0; s < MD_SUITE_COUNT; s++)
        l->pol[s] = (policy_fn)dlsym(l->h, policy_names[s]);
    if (!init || !l->create || !l->protect || !l->unprotect || !l->dealloc || !l->pol[0])
        return -1;
    /* the linked library was initialised by md_srtp_global_init already */
    if ((void *)dlsym(l->h, "srtp_protect_mki") != (void *)srtp_protect_mki &&
        init() != srtp_err_status_ok)
        return -1;
    return 0;
}

static int lib_session(const struct srtp_lib *l, md_srtp_suite_t s, const uint8_t *key,
                       bool outbound, srtp_t *out)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof pol);
    if (l->pol[s] == NULL)
        return -1;
    l->pol[s](&pol.rtp);
    l->pol[s](&pol.rtcp);
    pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    pol.key = (unsigned char *)key;
    pol.window_size = 128;
    return l->create(out, &pol) == srtp_err_status_ok ? 0 : -1;
}

/* ---- (b) SRTP AES_CM_128_HMAC_SHA1_80 on OpenSSL ---------------------------------
 *
 * Two ways to drive the same primitives:
 *   (b1) per packet, re-initialise an EVP AES-128-CTR context with the packet's IV
 *        and re-initialise an EVP_MAC HMAC-SHA1 context: what libsrtp2's OpenSSL
 *        backend does;
 *   (b2) the crypto limit: no per-packet initialisation at all. The keystream is
 *        AES-128-ECB of the packet's counter blocks through one persistent EVP
 *        context (CTR mode by hand, RFC 3711 section 4.1.1), and HMAC-SHA1 starts
 *        from SHA-1 states precomputed over key^ipad and key^opad. */

struct evp_srtp {
    bool fast;            /* (b2) */
    EVP_CIPHER_CTX *ctr;  /* (b1) */
    EVP_MAC_CTX *mac;     /* (b1) */
    EVP_CIPHER_CTX *ecb;  /* (b2) */
    SHA_CTX ipad, opad;   /* (b2) */
    uint8_t salt[14];
    uint32_t roc; /* sender: rollover counter */
    uint16_t s_l; /* receiver: highest sequence number seen */
    bool seen;
};

/* RFC 3711 section 4.3: AES-CM PRF with label, key derivation rate 0. */
static int kdf(const uint8_t *master, const uint8_t *msalt, uint8_t label, uint8_t *out, size_t n)
{
    uint8_t iv[16] = {0}, zero[32] = {0};
    memcpy(iv, msalt, 14);
    iv[7] ^= label;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len, ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, master, iv) &&
                  EVP_EncryptUpdate(c, out, &len, zero, (int)n);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static int evp_init(struct evp_srtp *e, const uint8_t *master_key_salt, bool fast)
{
    uint8_t ke[16], ka[20];
    memset(e, 0, sizeof *e);
    e->fast = fast;
    if (kdf(master_key_salt, master_key_salt + 16, 0, ke, 16) ||
        kdf(master_key_salt, master_key_salt + 16, 1, ka, 20) ||
        kdf(master_key_salt, master_key_salt + 16, 2, e->salt, 14))
        return -1;
    e->ctr = EVP_CIPHER_CTX_new();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    e->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
                           OSSL_PARAM_construct_end()};
    int ok = e->ctr && e->mac && EVP_EncryptInit_ex(e->ctr, EVP_aes_128_ctr(), NULL, ke, NULL) &&
             EVP_MAC_init(e->mac, ka, sizeof ka, params);
    e->ecb = EVP_CIPHER_CTX_new();
    ok = ok && e->ecb && EVP_EncryptInit_ex(e->ecb, EVP_aes_128_ecb(), NULL, ke, NULL) &&
         EVP_CIPHER_CTX_set_padding(e->ecb, 0);
    uint8_t pad[64];
    for (int k = 0; k < 2; k++) {
        memset(pad, k == 0 ? 0x36 : 0x5c, sizeof pad);
        for (size_t i = 0; i < sizeof ka; i++)
            pad[i] ^= ka[i];
        SHA_CTX *c = k == 0 ? &e->ipad : &e->opad;
        ok = ok && SHA1_Init(c) && SHA1_Update(c, pad, sizeof pad);
    }
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(ke, sizeof ke);
    OPENSSL_cleanse(ka, sizeof ka);
    return ok ? 0 : -1;
}

static void evp_free(struct evp_srtp *e)
{
    EVP_CIPHER_CTX_free(e->ctr);
    EVP_MAC_CTX_free(e->mac);
    EVP_CIPHER_CTX_free(e->ecb);
    OPENSSL_cleanse(&e->ipad, sizeof e->ipad);
    OPENSSL_cleanse(&e->opad, sizeof e->opad);
}

static int evp_crypt(struct evp_srtp *e, uint8_t *p, size_t len, uint64_t index)
{
    uint8_t iv[16] = {0};
    memcpy(iv, e->salt, 14);
    for (int i = 0; i < 4; i++)
        iv[4 + i] ^= p[8 + i];
    for (int i = 0; i < 6; i++)
        iv[8 + i] ^= (uint8_t)(index >> (40 - 8 * i));
    int n;
    if (e->fast) {
        /* counter blocks IV + i (the low 16 bits), encrypted in one call */
        uint8_t blocks[(PAYLOAD + 15) / 16 * 16 + 64], ks[sizeof blocks];
        size_t plen = len - 12, nb = (plen + 15) / 16;
        if (nb * 16 > sizeof blocks)
            return -1;
        for (size_t i = 0; i < nb; i++) {
            memcpy(blocks + 16 * i, iv, 14);
            blocks[16 * i + 14] = (uint8_t)(i >> 8);
            blocks[16 * i + 15] = (uint8_t)i;
        }
        if (!EVP_EncryptUpdate(e->ecb, ks, &n, blocks, (int)(nb * 16)))
            return -1;
        for (size_t i = 0; i < plen; i++)
            p[12 + i] ^= ks[i];
        return 0;
    }
    return EVP_EncryptInit_ex(e->ctr, NULL, NULL, NULL, iv) &&
                   EVP_EncryptUpdate(e->ctr, p + 12, &n, p + 12, (int)len - 12)
               ? 0
               : -1;
}

static int evp_tag(struct evp_srtp *e, const uint8_t *p, size_t len, uint32_t roc, uint8_t *tag)
{
    uint8_t r[4] = {(uint8_t)(roc >> 24), (uint8_t)(roc >> 16), (uint8_t)(roc >> 8), (uint8_t)roc};
    uint8_t full[20];
    size_t outl;
    if (e->fast) {
        SHA_CTX c = e->ipad;
        SHA1_Update(&c, p, len);
        SHA1_Update(&c, r, 4);
        SHA1_Final(full, &c);
        c = e->opad;
        SHA1_Update(&c, full, 20);
        SHA1_Final(full, &c);
        memcpy(tag, full, 10);
        return 0;
    }
    return EVP_MAC_init(e->mac, NULL, 0, NULL) && EVP_MAC_update(e->mac, p, len) &&
                   EVP_MAC_update(e->mac, r, 4) && EVP_MAC_final(e->mac, full, &outl, sizeof full)
               ? (memcpy(tag, full, 10), 0)
               : -1;
}

static int evp_protect(struct evp_srtp *e, uint8_t *p, size_t *len)
{
    uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
    if (e->seen && seq < e->s_l && e->s_l - seq > 32768)
        e->roc++;
    if (!e->seen || md_seq_diff(seq, e->s_l) > 0)
        e->s_l = seq;
    e->seen = true;
    uint64_t index = ((uint64_t)e->roc << 16) | seq;
    if (evp_crypt(e, p, *len, index) || evp_tag(e, p, *len, e->roc, p + *len))
        return -1;
    *len += 10;
    return 0;
}

static int evp_unprotect(struct evp_srtp *e, uint8_t *p, size_t *len)
{
    if (*len < 22)
        return -1;
    size_t rtp_len = *len - 10;
    uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
    /* RFC 3711 appendix A: estimate the packet's ROC from the highest seen seq */
    uint32_t v = e->roc;
    if (e->seen) {
        if (e->s_l < 32768) {
            if (seq - e->s_l > 32768)
                v = e->roc - 1;
        } else if (e->s_l - 32768 > seq) {
            v = e->roc + 1;
        }
    }
    uint8_t tag[10];
    if (evp_tag(e, p, rtp_len, v, tag) || CRYPTO_memcmp(tag, p + rtp_len, 10) != 0)
        return -1;
    if (evp_crypt(e, p, rtp_len, ((uint64_t)v << 16) | seq))
        return -1;
    if (!e->seen || v > e->roc || (v == e->roc && seq > e->s_l)) {
        e->roc = v;
        e->s_l = seq;
    }
    e->seen = true;
    *len = rtp_len;
    return 0;
}

/* ---- measurements -------------------------------------------------------------- */

struct rate {
    double pairs_per_s;
    bool ok;
};

static struct rate run_lib(const struct srtp_lib *l, md_srtp_suite_t s, const uint8_t *key)
{
    struct rate r = {0, false};
    srtp_t tx, rx;
    if (lib_session(l, s, key, true, &tx))
        return r;
    if (lib_session(l, s, key, false, &rx)) {
        l->dealloc(tx);
        return r;
    }
    uint8_t p[BUF];
    uint32_t i = 0, n0 = 0;
    double t0 = now_s(), t;
    int slice = 0;
    r.ok = true;
    do {
        for (int k = 0; k < 1000; k++, i++) {
            make_packet(p, i);
            int len = PKT;
            if (l->protect(tx, p, &len) || l->unprotect(rx, p, &len) || len != PKT)
                r.ok = false;
        }
        t = now_s() - t0;
        if (t >= seconds / SLICES) {
            if ((i - n0) / t > r.pairs_per_s)
                r.pairs_per_s = (i - n0) / t;
            n0 = i;
            t0 = now_s();
            slice++;
        }
    } while (slice < SLICES);
    l->dealloc(tx);
    l->dealloc(rx);
    return r;
}

static struct rate run_md(md_srtp_suite_t s, const uint8_t *key)
{
    struct rate r = {0, false};
    struct md_crypto c = {.suite = s};
    c.key_len = (uint8_t)(md_suite_key_len(s) + md_suite_salt_len(s));
    memcpy(c.key, key, c.key_len);
    struct md_srtp *tx = NULL, *rx = NULL;
    if (md_srtp_create(&tx, &c, MD_SRTP_OUTBOUND) != MD_OK ||
        md_srtp_create(&rx, &c, MD_SRTP_INBOUND) != MD_OK)
        goto out;
    uint8_t p[BUF];
    uint32_t i = 0, n0 = 0;
    double t0 = now_s(), t;
    int slice = 0;
    r.ok = true;
    do {
        for (int k = 0; k < 1000; k++, i++) {
            make_packet(p, i);
            size_t len = PKT;
            if (md_srtp_protect(tx, p, &len, sizeof p) != MD_OK ||
                md_srtp_unprotect(rx, p, &len) != MD_OK || len != PKT)
                r.ok = false;
        }
        t = now_s() - t0;
        if (t >= seconds / SLICES) {
            if ((i - n0) / t > r.pairs_per_s)
                r.pairs_per_s = (i - n0) / t;
            n0 = i;
            t0 = now_s();
            slice++;
        }
    } while (slice < SLICES);
out:
    md_srtp_free(tx);
    md_srtp_free(rx);
    return r;
}

static struct rate run_evp(const uint8_t *key, bool fast)
{
    struct rate r = {0, false};
    struct evp_srtp tx, rx;
    if (evp_init(&tx, key, fast) || evp_init(&rx, key, fast))
        return r;
    uint8_t p[BUF];
    uint32_t i = 0, n0 = 0;
    double t0 = now_s(), t;
    int slice = 0;
    r.ok = true;
    do {
        for (int k = 0; k < 1000; k++, i++) {
            make_packet(p, i);
            size_t len = PKT;
            if (evp_protect(&tx, p, &len) || evp_unprotect(&rx, p, &len) || len != PKT)
                r.ok = false;
        }
        t = now_s() - t0;
        if (t >= seconds / SLICES) {
            if ((i - n0) / t > r.pairs_per_s)
                r.pairs_per_s = (i - n0) / t;
            n0 = i;
            t0 = now_s();
            slice++;
        }
    } while (slice < SLICES);
    evp_free(&tx);
    evp_free(&rx);
    return r;
}

/* Protects VERIFY_PACKETS packets (across a sequence wrap) with the reference library
 * and with the other path; returns the number of packets whose SRTP differs, or -1
 * when a path could not run. */
static long verify_md(const struct srtp_lib *ref, md_srtp_suite_t s, const uint8_t *key)
{
    srtp_t tx;
    struct md_crypto c = {.suite = s};
    c.key_len = (uint8_t)(md_suite_key_len(s) + md_suite_salt_len(s));
    memcpy(c.key, key, c.key_len);
    struct md_srtp *m = NULL;
    if (lib_session(ref, s, key, true, &tx))
        return -1;
    if (md_srtp_create(&m, &c, MD_SRTP_OUTBOUND) != MD_OK) {
        ref->dealloc(tx);
        return -1;
    }
    long diff = 0;
    for (uint32_t i = 64000; i < 64000 + VERIFY_PACKETS; i++) {
        uint8_t a[BUF], b[BUF];
        make_packet(a, i);
        make_packet(b, i);
        int la = PKT;
        size_t lb = PKT;
        if (ref->protect(tx, a, &la) || md_srtp_protect(m, b, &lb, sizeof b) != MD_OK ||
            (size_t)la != lb || memcmp(a, b, lb) != 0)
            diff++;
    }
    ref->dealloc(tx);
    md_srtp_free(m);
    return diff;
}

static long verify_evp(const struct srtp_lib *ref, const uint8_t *key, bool fast)
{
    srtp_t tx, rx;
    struct evp_srtp e;
    if (lib_session(ref, MD_SUITE_AES_CM_128_HMAC_SHA1_80, key, true, &tx))
        return -1;
    if (lib_session(ref, MD_SUITE_AES_CM_128_HMAC_SHA1_80, key, false, &rx) || evp_init(&e, key, fast)) {
        ref->dealloc(tx);
        return -1;
    }
    long diff = 0;
    for (uint32_t i = 64000; i < 64000 + VERIFY_PACKETS; i++) {
        uint8_t a[BUF], b[BUF];
        make_packet(a, i);
        make_packet(b, i);
        int la = PKT;
        size_t lb = PKT;
        if (ref->protect(tx, a, &la) || evp_protect(&e, b, &lb) || (size_t)la != lb ||
            memcmp(a, b, lb) != 0) {
            diff++;
            continue;
        }
        /* and the reference accepts what the EVP transform produced */
        if (ref->unprotect(rx, b, &la) || la != PKT)
            diff++;
    }
    ref->dealloc(tx);
    ref->dealloc(rx);
    evp_free(&e);
    return diff;
}

static void machine(void)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f)
        fclose(f);
    printf("machine: %s, nproc %ld\n", model, sysconf(_SC_NPROCESSORS_ONLN));
    printf("openssl: %s\n", OpenSSL_version(OPENSSL_VERSION));
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average at start: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    if (seconds <= 0)
        seconds = 1.5;
    const char *syspath = getenv("CN_SRTP_SYSTEM_LIB");
    if (syspath == NULL)
        syspath = "libsrtp2.so.1";

    printf("srtp_bench: protect+unprotect pairs/s on one core, %d-byte RTP (%d-byte payload), "
           "%.1f s per figure\n",
           PKT, PAYLOAD, seconds);
    machine();

    /* Which libsrtp2 is linked: NSS already in the process means Debian's package. */
    bool linked_nss = dlopen("libnss3.so", RTLD_NOW | RTLD_NOLOAD) != NULL;
    Dl_info di;
    const char *linked = "?";
    if (dladdr((void *)srtp_protect_mki, &di) && di.dli_fname)
        linked = di.dli_fname;
    printf("linked libsrtp2: %s (%s), %s\n", linked, srtp_get_version_string(),
           linked_nss ? "NSS backend (the system package)" : "not NSS: the OpenSSL build");

    if (md_srtp_global_init() != MD_OK) {
        fprintf(stderr, "md_srtp_global_init failed\n");
        return 1;
    }
    struct srtp_lib sys;
    if (lib_open(&sys, syspath) != 0) {
        fprintf(stderr, "cannot load %s\n", syspath);
        return 1;
    }
    bool same_lib = dladdr(dlsym(sys.h, "srtp_protect_mki"), &di) && di.dli_fname &&
                    strcmp(di.dli_fname, linked) == 0;

    uint8_t key[MD_SRTP_MAX_MASTER_LEN];
    for (unsigned i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 29 + 7);

    int bad = 0;
    struct rate a[MD_SUITE_COUNT], c[MD_SUITE_COUNT];
    printf("\n(a) system libsrtp2 (%s)\n", syspath);
    for (unsigned s = 0; s < MD_SUITE_COUNT; s++) {
        a[s] = run_lib(&sys, (md_srtp_suite_t)s, key);
        if (a[s].pairs_per_s > 0)
            printf("    %-26s %10.0f pairs/s%s\n", md_suite_name((md_srtp_suite_t)s),
                   a[s].pairs_per_s, a[s].ok ? "" : "  (ERRORS)");
        else
            printf("    %-26s not supported\n", md_suite_name((md_srtp_suite_t)s));
        bad |= a[s].pairs_per_s > 0 && !a[s].ok;
    }

    printf("\n(b) OpenSSL AES-128-CTR + HMAC-SHA1-80 as SRTP AES_CM_128_HMAC_SHA1_80, same packets\n");
    struct rate b[2];
    static const char *bname[2] = {"(b1) EVP, re-init per packet", "(b2) no per-packet init"};
    for (int k = 0; k < 2; k++) {
        long d = verify_evp(&sys, key, k == 1);
        b[k] = run_evp(key, k == 1);
        printf("    %-30s %10.0f pairs/s  (output vs (a): %s)\n", bname[k], b[k].pairs_per_s,
               d == 0 ? "byte-identical" : "DIFFERENT");
        bad |= d != 0 || !b[k].ok;
    }

    printf("\n(c) linked libsrtp2 through md_srtp%s\n",
           same_lib ? " (the same library as (a): run deploy/build-libsrtp2-openssl.sh "
                      "and rebuild for the OpenSSL build)"
                    : "");
    for (unsigned s = 0; s < MD_SUITE_COUNT; s++) {
        if (!md_srtp_suite_supported((md_srtp_suite_t)s)) {
            printf("    %-26s not supported\n", md_suite_name((md_srtp_suite_t)s));
            c[s].pairs_per_s = 0;
            continue;
        }
        long dd = a[s].pairs_per_s > 0 ? verify_md(&sys, (md_srtp_suite_t)s, key) : -1;
        c[s] = run_md((md_srtp_suite_t)s, key);
        printf("    %-26s %10.0f pairs/s  (output vs (a): %s)\n", md_suite_name((md_srtp_suite_t)s),
               c[s].pairs_per_s,
               dd == 0  ? "byte-identical"
               : dd < 0 ? "not compared"
                        : "DIFFERENT");
        bad |= dd > 0 || !c[s].ok;
    }

    printf("\nratios (AES_CM_128_HMAC_SHA1_80 unless named)\n");
    if (a[0].pairs_per_s > 0) {
        printf("    (b2)/(a)  crypto limit over the system libsrtp2  %6.2fx\n",
               b[1].pairs_per_s / a[0].pairs_per_s);
        for (unsigned s = 0; s < MD_SUITE_COUNT; s++)
            if (a[s].pairs_per_s > 0 && c[s].pairs_per_s > 0)
                printf("    (c)/(a)   %-26s             %6.2fx\n",
                       md_suite_name((md_srtp_suite_t)s), c[s].pairs_per_s / a[s].pairs_per_s);
    }
    if (c[0].pairs_per_s > 0) {
        printf("    (c)/(b1)  linked libsrtp2 over the same EVP calls %6.2fx\n",
               c[0].pairs_per_s / b[0].pairs_per_s);
        printf("    (c)/(b2)  linked libsrtp2 over the crypto limit   %6.2fx\n",
               c[0].pairs_per_s / b[1].pairs_per_s);
    }
    printf("\n%s\n", bad ? "RESULT: FAILED (see DIFFERENT/ERRORS above)" : "RESULT: ok");
    md_srtp_global_shutdown();
    return bad ? 1 : 0;
}
