// Package protocol is the one definition of the signaling protocol (signaling/PROTOCOL.md), shared by the
// server (package signaling), the Go client (signaling/client) and the load test.
//
// Client to server: every message is a Request, which Decode parses and checks; every failure is a
// *ProtocolError carrying one of the Code constants, which the server sends back as an Error message.
//
// Server to client: each message type has a struct named after it (Joined, TrackEvent, Caption, ...), each with
// a Type field holding one of the Type constants; the server encodes them with encoding/json. A client decodes
// a message either into the struct of its type with DecodeServer (ServerMessage maps a type to its struct), or
// loosely into a Message, the union of all their fields, which is what signaling/client hands its users.
//
// A test decodes every JSON example of PROTOCOL.md into its type with unknown fields disallowed, so the document
// and these types cannot drift apart. The package imports only the standard library and Pion's WebRTC types.
package protocol
