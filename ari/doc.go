// Package ari is kanca's Asterisk source. It attaches to the Asterisk REST
// Interface (ARI) as an application subscribed to every event
// (subscribeAll=true), so calls are observed without being sent to Stasis,
// and turns each WebSocket frame into the PBX-neutral cdr.Input the tracker
// consumes.
//
// Decode is the pure half: one raw frame in, at most one input out. Source
// is the live half, Asterisk's adapter of a follow.Follower: it dials the
// events WebSocket, reads and decodes frames, lists channels and pings;
// the Follower reconnects with backoff and, after every (re)connect,
// reconciles the channels it remembers against the channels Asterisk
// lists, so calls that ended or began while kanca was not watching are
// closed or adopted. Client is the REST client the Source lists channels
// with, and the one commands go through.
package ari
