// Package pac decodes the Microsoft Privilege Attribute Certificate (MS-PAC) that
// Active Directory puts in every service ticket, and verifies its server signature.
//
// It owns the PAC wire format: the PACTYPE buffer table, the NDR-encoded
// KERB_VALIDATION_INFO, PAC_CLIENT_INFO, UPN_DNS_INFO and the PAC_SIGNATURE_DATA
// buffers, and the server-signature check (MS-PAC §2.8.1) with a key prepared by
// kcrypto. The decoder is hand written (no reflection) and bounds every count by the
// bytes that remain before it allocates, so hostile input costs at most linear work.
//
// It does not decide policy (which users or groups are allowed, whether a PAC is
// required) and it never talks to the network: the KDC signature is not checked
// here because only the KDC holds the krbtgt key.
//
// Signed PACs for tests are forged by package krbtest (krbtest.PAC), not here: this
// package holds no builder the product never uses.
package pac
