package wire

import (
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The encoders below serve the initiator side (kerbgate bench, S4U later) and tests
// that forge tickets with a known key. The acceptor path only needs the AP-REP ones.

func addExplicit(b *cryptobyte.Builder, n int, f cryptobyte.BuilderContinuation) {
	b.AddASN1(ctx(n), f)
}

func addKerberosTime(b *cryptobyte.Builder, n int, t time.Time) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes([]byte(t.UTC().Format("20060102150405Z")))
		})
	})
}

func addGeneralString(b *cryptobyte.Builder, n int, s string) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1(tagGeneralString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
	})
}

func addOctets(b *cryptobyte.Builder, n int, v []byte) {
	addExplicit(b, n, func(b *cryptobyte.Builder) { b.AddASN1OctetString(v) })
}

func addPrincipal(b *cryptobyte.Builder, n int, p PrincipalName) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, int64(p.NameType))
			addExplicit(b, 1, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, c := range p.Components {
						b.AddASN1(tagGeneralString, func(b *cryptobyte.Builder) { b.AddBytes([]byte(c)) })
					}
				})
			})
		})
	})
}

func addFlags(b *cryptobyte.Builder, n int, f uint32) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1BitString([]byte{byte(f >> 24), byte(f >> 16), byte(f >> 8), byte(f)})
	})
}

func addEncryptedData(b *cryptobyte.Builder, n int, e EncryptedData) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, int64(e.EType))
			if e.HasKVNO {
				addExplicitInt(b, 1, int64(e.KVNO))
			}
			addOctets(b, 2, e.Cipher)
		})
	})
}

func addEncryptionKey(b *cryptobyte.Builder, n int, k EncryptionKey) {
	addExplicit(b, n, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, int64(k.KeyType))
			addOctets(b, 1, k.Value)
		})
	})
}

// MarshalAuthorizationData encodes an AuthorizationData sequence (also the contents of
// an AD-IF-RELEVANT element).
func MarshalAuthorizationData(ads []AuthorizationData) ([]byte, error) {
	var b cryptobyte.Builder
	addAuthorizationData(&b, ads)
	return b.Bytes()
}

func addAuthorizationData(b *cryptobyte.Builder, ads []AuthorizationData) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, ad := range ads {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExplicitInt(b, 0, int64(ad.Type))
				addOctets(b, 1, ad.Data)
			})
		}
	})
}

// MarshalTicket encodes a Ticket ([APPLICATION 1]).
func MarshalTicket(t *Ticket) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(app(tagTicket), func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, 5)
			addGeneralString(b, 1, t.Realm)
			addPrincipal(b, 2, t.SName)
			addEncryptedData(b, 3, t.EncPart)
		})
	})
	return b.Bytes()
}

// MarshalEncTicketPart encodes an EncTicketPart ([APPLICATION 3]) with empty
// transited encoding.
func MarshalEncTicketPart(e *EncTicketPart) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(app(tagEncTicketPart), func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addFlags(b, 0, e.Flags)
			addEncryptionKey(b, 1, e.Key)
			addGeneralString(b, 2, e.CRealm)
			addPrincipal(b, 3, e.CName)
			addExplicit(b, 4, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addExplicitInt(b, 0, 1) // DOMAIN-X500-COMPRESS
					addOctets(b, 1, nil)
				})
			})
			addKerberosTime(b, 5, e.AuthTime)
			if !e.StartTime.IsZero() {
				addKerberosTime(b, 6, e.StartTime)
			}
			addKerberosTime(b, 7, e.EndTime)
			if !e.RenewTill.IsZero() {
				addKerberosTime(b, 8, e.RenewTill)
			}
			if len(e.Authorization) > 0 {
				addExplicit(b, 10, func(b *cryptobyte.Builder) { addAuthorizationData(b, e.Authorization) })
			}
		})
	})
	return b.Bytes()
}

// MarshalAuthenticator encodes an Authenticator ([APPLICATION 2]).
func MarshalAuthenticator(a *Authenticator) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(app(tagAuthenticator), func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, 5)
			addGeneralString(b, 1, a.CRealm)
			addPrincipal(b, 2, a.CName)
			if a.Checksum != nil {
				addExplicit(b, 3, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						addExplicitInt(b, 0, int64(a.Checksum.Type))
						addOctets(b, 1, a.Checksum.Value)
					})
				})
			}
			addExplicitInt(b, 4, int64(a.CUSec))
			addKerberosTime(b, 5, a.CTime)
			if a.SubKey != nil {
				addEncryptionKey(b, 6, *a.SubKey)
			}
			if a.HasSeqNumber {
				addExplicitInt(b, 7, int64(a.SeqNumber))
			}
			if len(a.Authorization) > 0 {
				addExplicit(b, 8, func(b *cryptobyte.Builder) { addAuthorizationData(b, a.Authorization) })
			}
		})
	})
	return b.Bytes()
}

// MarshalAPReq encodes a KRB_AP_REQ from an already encoded Ticket and an encrypted
// authenticator.
func MarshalAPReq(apOptions uint32, ticketDER []byte, authenticator EncryptedData) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(app(tagAPReq), func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicitInt(b, 0, 5)
			addExplicitInt(b, 1, tagAPReq)
			addFlags(b, 2, apOptions)
			addExplicit(b, 3, func(b *cryptobyte.Builder) { b.AddBytes(ticketDER) })
			addEncryptedData(b, 4, authenticator)
		})
	})
	return b.Bytes()
}
