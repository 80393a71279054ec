/* RTP and RTCP (RFC 3550, RFC 4585, RFC 5104): zero-copy parsers, in-place
 * rewriters, builders, and the rtcp-mux demultiplexer (RFC 5761, RFC 7983).
 *
 * Parser contract (for md_rtp_parse, md_rtcp_next and the md_rtcp_* readers):
 *   - never read buf[len] or beyond, never write the input (it is const);
 *   - never allocate: results are scalars and (pointer, length) views into buf;
 *   - return MD_OK or a negative md_status_t; on error *out is unspecified.
 * A datagram is parsed whole: a short datagram is MD_ERR_TRUNCATED, never "partial".
 *
 * Builders write into a caller buffer of capacity cap and return the number of bytes
 * written, or MD_ERR_NOSPACE (nothing useful written) / MD_ERR_PARAM. */
#ifndef MD_RTP_H
#define MD_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_status.h"

#define MD_RTP_HDR_MIN 12
#define MD_RTCP_HDR_LEN 4

/* ---- RTP ---------------------------------------------------------------------- */

struct md_rtp {
    bool padding;
    bool extension;
    bool marker;
    uint8_t cc; /* number of CSRCs */
    uint8_t pt; /* payload type, 0..127 */
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    const uint8_t *csrc;    /* cc big-endian 32-bit words (use md_rtp_csrc) */
    uint16_t ext_profile;   /* "defined by profile" field, when extension */
    const uint8_t *ext;     /* extension data (after its 4-byte header) */
    size_t ext_len;         /* bytes, a multiple of 4 */
    size_t header_len;      /* fixed header + CSRCs + extension */
    const uint8_t *payload; /* view between the header and the padding */
    size_t payload_len;
    uint8_t pad_len; /* padding bytes counted by the last octet (0 if none) */
};

/* Parses one RTP packet of len bytes.
 * Returns MD_OK, MD_ERR_TRUNCATED (shorter than the fixed header, the CSRC list or
 * the extension), MD_ERR_VERSION (version != 2) or MD_ERR_MALFORMED (padding count
 * of zero or larger than what follows the header). */
md_status_t md_rtp_parse(const uint8_t *buf, size_t len, struct md_rtp *out);

/* The i-th CSRC of a parsed packet (i < cc). */
uint32_t md_rtp_csrc(const struct md_rtp *r, unsigned i);

/* In-place rewriters. The caller has parsed the packet or otherwise knows that it
 * holds at least MD_RTP_HDR_MIN bytes; they touch only the field they name. */
static inline void md_rtp_set_seq(uint8_t *pkt, uint16_t seq)
{
    pkt[2] = (uint8_t)(seq >> 8);
    pkt[3] = (uint8_t)seq;
}

static inline void md_rtp_set_ts(uint8_t *pkt, uint32_t ts)
{
    pkt[4] = (uint8_t)(ts >> 24);
    pkt[5] = (uint8_t)(ts >> 16);
    pkt[6] = (uint8_t)(ts >> 8);
    pkt[7] = (uint8_t)ts;
}

static inline void md_rtp_set_ssrc(uint8_t *pkt, uint32_t ssrc)
{
    pkt[8] = (uint8_t)(ssrc >> 24);
    pkt[9] = (uint8_t)(ssrc >> 16);
    pkt[10] = (uint8_t)(ssrc >> 8);
    pkt[11] = (uint8_t)ssrc;
}

static inline void md_rtp_set_marker(uint8_t *pkt, bool marker)
{
    pkt[1] = (uint8_t)((pkt[1] & 0x7f) | (marker ? 0x80 : 0));
}

static inline void md_rtp_set_pt(uint8_t *pkt, uint8_t pt)
{
    pkt[1] = (uint8_t)((pkt[1] & 0x80) | (pt & 0x7f));
}

/* An outgoing RTP stream: the sender state for one SSRC (owner: one worker). */
struct md_rtp_out {
    uint32_t ssrc;
    uint16_t seq; /* next sequence number to send */
    uint32_t ts;  /* timestamp of the next frame */
    uint8_t pt;
    uint32_t packets; /* for RTCP SR */
    uint32_t octets;  /* payload octets, for RTCP SR */
};

/* Writes a 12-byte RTP header for the next packet of the stream (no CSRC, no
 * extension), then advances seq by 1, ts by ts_step and the SR counters by
 * payload_len. Returns 12 or MD_ERR_NOSPACE (cap < 12; the stream is unchanged). */
int md_rtp_out_header(struct md_rtp_out *s, uint8_t *buf, size_t cap, bool marker, uint32_t ts_step,
                      size_t payload_len);

/* Serial-number arithmetic on 16-bit sequence numbers (RFC 1982): a - b in -32768..32767. */
static inline int16_t md_seq_diff(uint16_t a, uint16_t b)
{
    return (int16_t)(uint16_t)(a - b);
}

/* ---- rtcp-mux demultiplexing --------------------------------------------------- */

typedef enum md_pkt_kind {
    MD_PKT_UNKNOWN = 0,
    MD_PKT_RTP,
    MD_PKT_RTCP,
    MD_PKT_STUN, /* first byte 0..3 (RFC 7983) */
    MD_PKT_DTLS, /* first byte 20..63 */
} md_pkt_kind_t;

/* Classifies a datagram received on an rtcp-mux port by its first two bytes:
 * version 2 with packet type 192..223 (marker bit included, RFC 5761 section 4) is
 * RTCP, other version-2 packets of at least 12 bytes are RTP. Reads at most 2 bytes
 * and only within len. */
md_pkt_kind_t md_demux(const uint8_t *buf, size_t len);

/* ---- RTCP ---------------------------------------------------------------------- */

enum {
    MD_RTCP_SR = 200,
    MD_RTCP_RR = 201,
    MD_RTCP_SDES = 202,
    MD_RTCP_BYE = 203,
    MD_RTCP_APP = 204,
    MD_RTCP_RTPFB = 205, /* FMT 1: generic NACK */
    MD_RTCP_PSFB = 206,  /* FMT 1: PLI, FMT 4: FIR */
};

enum { MD_RTCP_FMT_NACK = 1, MD_RTCP_FMT_PLI = 1, MD_RTCP_FMT_FIR = 4 };

#define MD_RTCP_SDES_CNAME 1

struct md_rtcp_rblock {
    uint32_t ssrc;
    uint8_t fraction_lost;
    int32_t cum_lost; /* 24-bit signed */
    uint32_t ext_high_seq;
    uint32_t jitter;
    uint32_t lsr;
    uint32_t dlsr;
};

/* One packet of a compound RTCP datagram. Views point into the datagram. */
struct md_rtcp {
    uint8_t type;  /* 200..206, other values are passed through as-is */
    uint8_t count; /* RC / SC / FMT field */
    bool padding;
    const uint8_t *raw; /* the whole packet, header included */
    size_t raw_len;
    const uint8_t *body; /* after the 4-byte header, padding excluded */
    size_t body_len;
    uint32_t ssrc; /* packet sender (SR, RR, RTPFB, PSFB, APP), first SSRC of
                      a BYE or first chunk of an SDES; 0 if absent */
    /* SR only */
    uint64_t ntp;
    uint32_t rtp_ts;
    uint32_t packets;
    uint32_t octets;
    /* SR / RR: `count` report blocks of 24 bytes (use md_rtcp_rblock_get) */
    const uint8_t *blocks;
    /* RTPFB / PSFB */
    uint32_t media_ssrc;
    const uint8_t *fci;
    size_t fci_len;
};

/* Reads the packet at *off of the compound datagram buf[0..len) and advances *off
 * past it. Returns 1 with *out filled, 0 when *off == len (end of the compound),
 * MD_ERR_TRUNCATED when a header or length field runs past len, MD_ERR_VERSION, or
 * MD_ERR_MALFORMED when a packet's count does not fit its length (report blocks,
 * feedback FCI, BYE SSRC list) or its padding is inconsistent. Start with *off = 0.
 * Only a non-final packet may not carry padding; that is not enforced. */
int md_rtcp_next(const uint8_t *buf, size_t len, size_t *off, struct md_rtcp *out);

/* Checks a whole compound datagram: every packet parses and the first one is an SR
 * or an RR (RFC 3550 section 6.1). Returns the number of packets or a negative status. */
int md_rtcp_validate(const uint8_t *buf, size_t len);

/* The i-th report block of an SR/RR (i < count). */
void md_rtcp_rblock_get(const struct md_rtcp *p, unsigned i, struct md_rtcp_rblock *rb);

/* Generic NACK entries (RTPFB FMT 1): fci_len / 4 of them. */
static inline size_t md_rtcp_nack_count(const struct md_rtcp *p)
{
    return p->fci_len / 4;
}
void md_rtcp_nack_get(const struct md_rtcp *p, size_t i, uint16_t *pid, uint16_t *blp);

/* FIR entries (PSFB FMT 4): fci_len / 8 of them. */
static inline size_t md_rtcp_fir_count(const struct md_rtcp *p)
{
    return p->fci_len / 8;
}
void md_rtcp_fir_get(const struct md_rtcp *p, size_t i, uint32_t *ssrc, uint8_t *seq_nr);

/* The CNAME of the first SDES chunk that has one. Returns MD_OK with a view of the
 * item text, MD_ERR_UNSUPPORTED when no chunk has a CNAME, MD_ERR_MALFORMED when a
 * chunk runs past the packet. */
md_status_t md_rtcp_sdes_cname(const struct md_rtcp *p, uint32_t *ssrc, const uint8_t **cname,
                               size_t *cname_len);

/* The i-th SSRC of a BYE (i < count) and its optional reason text (NULL, 0 if none;
 * MD_ERR_MALFORMED if the reason length runs past the packet). */
uint32_t md_rtcp_bye_ssrc(const struct md_rtcp *p, unsigned i);
md_status_t md_rtcp_bye_reason(const struct md_rtcp *p, const uint8_t **reason, size_t *len);

/* Builders. Each writes one RTCP packet at buf; concatenate them into a compound
 * (an SR or RR first). At most 31 report blocks. */
int md_rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t packets, uint32_t octets, const struct md_rtcp_rblock *rb,
                     unsigned n_rb);
int md_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc, const struct md_rtcp_rblock *rb,
                     unsigned n_rb);
/* SDES with a single chunk holding a CNAME (1..255 bytes). */
int md_rtcp_build_sdes_cname(uint8_t *buf, size_t cap, uint32_t ssrc, const char *cname,
                             size_t cname_len);
int md_rtcp_build_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);
int md_rtcp_build_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t seq_nr);
int md_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t pid, uint16_t blp);
int md_rtcp_build_bye(uint8_t *buf, size_t cap, uint32_t ssrc);

#endif
