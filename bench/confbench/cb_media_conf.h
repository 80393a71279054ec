/* confbench --conference N: a conference check against a room.
 *
 * Places N calls to the room over SIP/UDP (one SIP socket and one RTP socket per
 * participant, rtcp-mux); participant i calls the (i mod K)-th of the K IPv4
 * addresses the target resolved to, so a SIP domain or a round-robin name spreads
 * the participants over the nodes of a cluster. ACK and BYE follow the dialog (the
 * 2xx's Contact, through its Record-Route set), so a node that proxies the call to
 * the conference's owner stays on the path. The offer is RTP/AVP or, with --srtp,
 * RTP/SAVP with an a=crypto line of our own key (md_sdes); the answer's a=crypto
 * keys what we receive, its c= and m= say where our media goes (the owner's
 * address, whichever node was called). Each participant then sends its tone
 * (--tones) as 20 ms frames of its
 * codec (--codec/--codecs: pcmu, pcma, opus) for --hold (default 3 s), receives and
 * decodes the mix, and at the end measures with Goertzel (cb_media_audio.h) how
 * much of every participant's tone it heard. --tamper flips a byte of one SRTP
 * packet of participant 0, which the node must drop and count as an SRTP
 * authentication failure; the number sent is reported.
 *
 * Prints a table on stdout, and with --json per participant the address called, the
 * answer's media address, the Record-Route entries and the ratios. Returns the
 * exit status: 0 when every call was answered 200 and every participant heard each
 * other tone >= CB_HEAR_MIN and its own <= CB_OWN_MAX, 1 otherwise, 2 on a setup
 * error (bad --tones/--codecs, unusable address).
 */
#ifndef CB_MEDIA_CONF_H
#define CB_MEDIA_CONF_H

#include "cb_dns.h"
#include "cb_opts.h"

int cb_conf_run(const cb_opts_t *o, const cb_addr_t *targets, unsigned ntargets);

#endif
