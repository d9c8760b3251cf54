//! The SSH protocol callbacks of one connection: authentication and channel policy.
//!
//! Every callback runs inside the connection's protocol loop, so none of them waits for
//! anything slow except the policy's `authorize` (bounded by the policy timeout, and needed
//! before the login can proceed anyway). Tunnels are opened in their own tasks.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, HashAlg, PublicKey};
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tracing::{debug, info};

use crate::gateway::{Conn, Inner, lock};
use crate::{AuditEvent, OfferedKey, Principal};

/// Longest host name accepted in a tunnel request (DNS names are at most 253 bytes).
const MAX_HOST_LEN: usize = 255;

/// A policy answer waiting for the client's signature.
struct Pending {
    user: String,
    blob: Vec<u8>,
    principal: Principal,
    generation: u64,
}

pub(crate) struct ConnHandler {
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    pending: Option<Pending>,
    principal: Option<Principal>,
    session_channels: HashSet<ChannelId>,
}

fn publickey_only() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
        partial_success: false,
    }
}

/// Whether a key of this algorithm and size may log in at all.
pub(crate) fn check_key(algorithm: &Algorithm, key: &PublicKey) -> Result<(), String> {
    match (algorithm, key.key_data()) {
        (Algorithm::Ed25519, KeyData::Ed25519(_)) => Ok(()),
        (Algorithm::Ecdsa { .. }, KeyData::Ecdsa(_)) => Ok(()),
        (
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256 | HashAlg::Sha512),
            },
            KeyData::Rsa(rsa),
        ) => {
            if rsa.key_size() >= 2048 {
                Ok(())
            } else {
                Err(format!(
                    "RSA key of {} bits (2048 required)",
                    rsa.key_size()
                ))
            }
        }
        (Algorithm::Rsa { hash: None }, _) => {
            Err("ssh-rsa (SHA-1) signatures are not accepted".into())
        }
        (algorithm, _) => Err(format!("key type {algorithm} is not accepted")),
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn blob(key: &PublicKey) -> Vec<u8> {
    key.to_bytes().unwrap_or_default()
}

impl ConnHandler {
    pub(crate) fn new(inner: Arc<Inner>, conn: Arc<Conn>) -> Self {
        ConnHandler {
            inner,
            conn,
            pending: None,
            principal: None,
            session_channels: HashSet::new(),
        }
    }

    fn audit(&self, event: AuditEvent) {
        self.inner.policy.audit(event);
    }

    fn refuse_login(
        &self,
        user: &str,
        key_fingerprint: Option<String>,
        method: &str,
        reason: String,
    ) {
        self.conn.rejections.fetch_add(1, Ordering::Relaxed);
        debug!(peer = %self.conn.peer, user, method, %reason, "ssh login refused");
        self.audit(AuditEvent::Login {
            peer: self.conn.peer,
            user: user.to_string(),
            key_fingerprint,
            method: method.to_string(),
            accepted: false,
            reason: Some(reason),
        });
    }

    fn refuse(&self, what: &str) {
        debug!(peer = %self.conn.peer, what, "ssh request refused");
        self.audit(AuditEvent::Refused {
            peer: self.conn.peer,
            what: what.to_string(),
        });
    }

    fn open_channels(&self) -> usize {
        self.session_channels.len() + self.conn.tunnels.load(Ordering::Acquire)
    }

    /// Asks the policy, within the policy timeout; remembers the answer for the signature
    /// check that follows.
    async fn authorize(&mut self, user: &str, key: &OfferedKey) -> Result<(), String> {
        let generation = lock(&self.inner.registry).generation;
        let answer = tokio::time::timeout(
            self.inner.limits.policy_timeout,
            self.inner.policy.authorize(self.conn.peer, user, key),
        )
        .await
        .unwrap_or_else(|_| Err("policy did not answer in time".into()))?;
        self.pending = Some(Pending {
            user: user.to_string(),
            blob: key.blob.clone(),
            principal: answer,
            generation,
        });
        Ok(())
    }

    fn refuse_request(
        &self,
        channel: ChannelId,
        what: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.refuse(what);
        session.channel_failure(channel)
    }
}

impl Handler for ConnHandler {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.audit(AuditEvent::Login {
            peer: self.conn.peer,
            user: user.to_string(),
            key_fingerprint: None,
            method: "none".into(),
            accepted: false,
            reason: Some("public key required".into()),
        });
        Ok(publickey_only())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.refuse_login(user, None, "password", "method not allowed".into());
        Ok(publickey_only())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.refuse_login(
            user,
            None,
            "keyboard-interactive",
            "method not allowed".into(),
        );
        Ok(publickey_only())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let key = OfferedKey {
            algorithm: offer.algorithm.to_string(),
            blob: blob(offer.public_key),
            fingerprint: fingerprint(offer.public_key),
        };
        if let Err(reason) = check_key(offer.algorithm, offer.public_key) {
            self.refuse_login(user, Some(key.fingerprint), "publickey", reason);
            return Ok(publickey_only());
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.user == user && p.blob == key.blob)
        {
            return Ok(Auth::Accept);
        }
        match self.authorize(user, &key).await {
            Ok(()) => Ok(Auth::Accept),
            Err(reason) => {
                self.refuse_login(user, Some(key.fingerprint), "publickey", reason);
                Ok(publickey_only())
            }
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let offered = OfferedKey {
            algorithm: key.algorithm.to_string(),
            blob: blob(key.public_key),
            fingerprint: fingerprint(key.public_key),
        };
        if let Err(reason) = check_key(key.algorithm, key.public_key) {
            self.refuse_login(user, Some(offered.fingerprint), "publickey", reason);
            return Ok(publickey_only());
        }
        // A revoke between the policy's answer and now invalidates the answer: ask again.
        for _ in 0..3 {
            let fresh = self
                .pending
                .as_ref()
                .is_some_and(|p| p.user == user && p.blob == offered.blob);
            if !fresh && let Err(reason) = self.authorize(user, &offered).await {
                self.refuse_login(user, Some(offered.fingerprint), "publickey", reason);
                return Ok(publickey_only());
            }
            let Some(pending) = self.pending.take() else {
                break;
            };
            let registered = {
                let reg = lock(&self.inner.registry);
                if self.conn.stop.is_cancelled() {
                    self.refuse_login(
                        user,
                        Some(offered.fingerprint),
                        "publickey",
                        "gateway closing".into(),
                    );
                    return Ok(publickey_only());
                }
                if reg.generation == pending.generation {
                    *lock(&self.conn.principal) = Some(pending.principal.clone());
                    true
                } else {
                    false
                }
            };
            if registered {
                info!(
                    peer = %self.conn.peer,
                    user,
                    key = %offered.fingerprint,
                    tag = %pending.principal.tag,
                    "ssh login accepted"
                );
                self.audit(AuditEvent::Login {
                    peer: self.conn.peer,
                    user: user.to_string(),
                    key_fingerprint: Some(offered.fingerprint),
                    method: "publickey".into(),
                    accepted: true,
                    reason: None,
                });
                self.principal = Some(pending.principal);
                return Ok(Auth::Accept);
            }
        }
        self.refuse_login(
            user,
            Some(offered.fingerprint),
            "publickey",
            "authorization changed during login".into(),
        );
        Ok(publickey_only())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        let fp = certificate
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        self.pending = None;
        self.refuse_login(
            user,
            Some(fp),
            "publickey",
            "certificates are not accepted".into(),
        );
        Ok(publickey_only())
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.pending = None;
        self.conn.authed.cancel();
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.conn.stop.is_cancelled() {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        if self.open_channels() >= self.inner.limits.max_channels_per_session {
            self.refuse("channel-limit");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        // A session channel is allowed (some clients open one even when only forwarding)
        // but every request on it is refused. Its reading end is dropped at once, so
        // whatever the client sends on it is discarded rather than queued.
        self.session_channels.insert(channel.id());
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.session_channels.remove(&channel);
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("x11");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("forwarded-tcpip");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("direct-streamlocal");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(principal) = self.principal.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if self.conn.stop.is_cancelled() {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let refusal = if self.open_channels() >= self.inner.limits.max_channels_per_session {
            Some((ChannelOpenFailure::ResourceShortage, "too many channels"))
        } else if host_to_connect.len() > MAX_HOST_LEN {
            Some((ChannelOpenFailure::ConnectFailed, "host name too long"))
        } else if u16::try_from(port_to_connect).is_err() {
            Some((ChannelOpenFailure::ConnectFailed, "port out of range"))
        } else {
            None
        };
        if let Some((code, reason)) = refusal {
            let mut host = host_to_connect.to_string();
            if host.len() > MAX_HOST_LEN {
                let mut cut = MAX_HOST_LEN;
                while !host.is_char_boundary(cut) {
                    cut -= 1;
                }
                host.truncate(cut);
            }
            self.audit(AuditEvent::Tunnel {
                peer: self.conn.peer,
                principal,
                host,
                port: port_to_connect,
                accepted: false,
                reason: Some(reason.into()),
            });
            reply.reject(code).await;
            return Ok(());
        }
        self.conn.tunnels.fetch_add(1, Ordering::AcqRel);
        self.conn.tunnels_changed.notify_one();
        let slot = crate::tunnel::Slot::new(self.inner.clone(), self.conn.clone());
        self.conn.tracker.spawn(crate::tunnel::run(
            slot,
            principal,
            host_to_connect.to_string(),
            port_to_connect as u16,
            channel,
            reply,
        ));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("tcpip-forward");
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("streamlocal-forward");
        Ok(false)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "pty-req", session)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "x11-req", session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "env", session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "shell", session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "exec", session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, "subsystem", session)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("auth-agent-req");
        Ok(false)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519() -> PublicKey {
        crate::HostKey::generate()
            .private_key()
            .public_key()
            .clone()
    }

    #[test]
    fn accepts_ed25519_and_refuses_mismatched_or_sha1_algorithms() {
        let k = ed25519();
        assert!(check_key(&Algorithm::Ed25519, &k).is_ok());
        assert!(check_key(&Algorithm::Rsa { hash: None }, &k).is_err());
        assert!(
            check_key(
                &Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512)
                },
                &k
            )
            .is_err()
        );
    }

    /// Public keys written by `ssh-keygen -t rsa -b 1024` and `-b 2048`; the fingerprint is
    /// what `ssh-keygen -l` printed for the second.
    const RSA_1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDBb6eRxNlCsBh/ag/21+6sAMl4RI0ZQ97ve3Asar60K7BlQFAuUcviugO1gkNthOzr0PN5UCA6F4XQ2+YGCPrZmRxvH/vy1b2O4d0qFQRySO74PATGodHgdJGHKW7fCy8pJ7tTJfvECOiwYvP1a2i8mayOyrecnPsjergKLnocow==";
    const RSA_2048: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDNnZaManwjTZ4g7eXuUjjS534lq15Wpxh9nVK9cDY6W+ATg2KSwDKmGM5zbuCADvHWxCIDti2uVX221agM+AuAAjmNIRHYHT4ATxKBV4ZDq3INnst9NnVlj6iQxxyrHG+Ds3r7lk1gqb1VW7igYi6U7u5PwSOMxu1ROVQTAtLiBBDQxG7vZjFQHsS/bG06oSj9zTeZq+e9XH1yVfjsGRKBMR/MJvj6Hr7V1t7LgUw1i8NDVQboGxERh3bZQagljqI1KKoV6sVPxDsmtblgvx2zPqS1y+WDtUbo9NtbaO4ZUGQHdixrg4moLwoyrzBkgmeBe/dxWTbXwyIlqvhhGJwX";
    const RSA_2048_FP: &str = "SHA256:s6b7Sj8kDmIja1csAmhMNzLLysiUk8jvDsPDbNI1e1E";

    #[test]
    fn rsa_keys_need_2048_bits_and_sha2() {
        let sha512 = Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        };
        let small = PublicKey::from_openssh(RSA_1024).unwrap();
        let err = check_key(&sha512, &small).unwrap_err();
        assert!(err.contains("1024"), "{err}");

        let big = PublicKey::from_openssh(RSA_2048).unwrap();
        assert!(check_key(&sha512, &big).is_ok());
        assert!(
            check_key(
                &Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256)
                },
                &big
            )
            .is_ok()
        );
        assert!(check_key(&Algorithm::Rsa { hash: None }, &big).is_err());
    }

    #[test]
    fn fingerprint_matches_ssh_keygen_and_blob_is_wire_encoding() {
        let k = PublicKey::from_openssh(RSA_2048).unwrap();
        assert_eq!(fingerprint(&k), RSA_2048_FP);
        let b = blob(&k);
        // The wire encoding starts with the string "ssh-rsa".
        assert_eq!(&b[..11], b"\0\0\0\x07ssh-rsa");
        // ...and is what the middle field of the public key line decodes to.
        assert_eq!(PublicKey::from_bytes(&b).unwrap().key_data(), k.key_data());
    }
}
