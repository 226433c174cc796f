// Package follow follows one PBX: it connects through an adapter,
// reconnects with backoff after every failure, probes an idle connection,
// seeds its memory of live channels from the journal and, after every
// (re)connect, reconciles that memory with the channels the PBX lists, so
// calls that ended or began while nobody listened are closed or adopted.
//
// It knows nothing of a PBX's protocol. An adapter (ari for Asterisk, esl
// for FreeSWITCH) says how to dial and subscribe, how to read and decode
// one event, how to list channels and how to probe; this package holds
// every rule about what to do with them, so a fix to the reconnect or to
// the reconcile rules is made once for every PBX.
//
// The contract both sources keep (pipeline.Source, pipeline.Seeder): inputs
// in the PBX's order; after every (re)connect the reconciliation inputs
// before any event of the new connection; listed channels held until their
// next event (or Config.Settle), so a list racing a channel's own creation
// creates it once.
package follow
