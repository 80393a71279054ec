/* confbench --conference N: a conference check against a room.
 *
 * Places N calls to the room over SIP/UDP (one SIP socket and one RTP socket per
 * participant, rtcp-mux), offering RTP/AVP or, with --srtp, RTP/SAVP with an
 * a=crypto line of our own key (md_sdes); the answer's a=crypto keys what we
 * receive. Each participant then sends its tone (--tones) as 20 ms frames of its
 * codec (--codec/--codecs: pcmu, pcma, opus) for --hold (default 3 s), receives and
 * decodes the mix, and at the end measures with Goertzel (cb_media_audio.h) how
 * much of every participant's tone it heard. --tamper flips a byte of one SRTP
 * packet of participant 0, which the node must drop and count as an SRTP
 * authentication failure; the number sent is reported.
 *
 * Prints a table on stdout, and with --json the per-participant ratios. Returns the
 * exit status: 0 when every call was answered 200 and every participant heard each
 * other tone >= CB_HEAR_MIN and its own <= CB_OWN_MAX, 1 otherwise, 2 on a setup
 * error (bad --tones/--codecs, unusable address).
 */
#ifndef CB_MEDIA_CONF_H
#define CB_MEDIA_CONF_H

#include "cb_dns.h"
#include "cb_opts.h"

int cb_conf_run(const cb_opts_t *o, const cb_addr_t *target);

#endif
