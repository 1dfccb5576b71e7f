//! Cost of authenticating and authorizing one API request, without the database lookups:
//! parse the LMv1 header, decrypt the token's access key (XChaCha20-Poly1305 under the
//! master key), derive the signed path, verify the HMAC in constant time, apply the token
//! mandate and check the privilege. Target: under 5 µs.
//!
//! Run: `cargo bench -p palisade-server --bench auth`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade_core::policy::{check_token_use, OwnerFacts};
use palisade_core::privilege::{allows, Level, Need, Privilege, SettingObject};
use palisade_core::secret::Secret;
use palisade_core::{lmv1, token};
use palisade_server::keys::Keys;

fn bench(c: &mut Criterion) {
    let keys = Keys::from_master(&Secret::new([7u8; 32]));
    let access_id = "AbCdEfGhIjKlMnOpQrSt";
    let secret = token::encode(token::TokenKind::Lmv1Key, &[9u8; 32]);
    let sealed = keys.seal(secret.expose().as_bytes(), access_id);
    let epoch = 1_800_000_000_000i64;
    let body = br#"{"username": "carol", "email": "c@example.com", "roles": [{"id": 5}]}"#;
    let path = "/santaba/rest/setting/admins";
    let header = lmv1::authorization(
        access_id,
        secret.expose(),
        "POST",
        epoch,
        body,
        "/setting/admins",
    );
    let privileges = vec![
        Privilege::new("setting", "accesslogs", "read"),
        Privilege::new("host_group", "*", "read"),
        Privilege::new("setting", "useraccess", "write"),
    ];
    let facts = OwnerFacts {
        is_support: false,
        holds_administrator: false,
        active: true,
    };
    let need = Need::Setting(SettingObject::UserAccess, Level::Write);

    c.bench_function("lmv1_verify_and_authorize", |b| {
        b.iter(|| {
            let h = lmv1::parse_header(black_box(&header)).ok()?;
            let key = keys.open(black_box(&sealed), h.access_id).ok()?;
            let resource = lmv1::resource_path(black_box(path));
            lmv1::verify(
                &h,
                key.expose(),
                "POST",
                black_box(body),
                &resource,
                epoch + 5,
            )
            .ok()?;
            check_token_use(black_box(&facts)).ok()?;
            Some(allows(black_box(&privileges), &need))
        })
    });

    c.bench_function("lmv1_verify_only", |b| {
        b.iter(|| {
            let h = lmv1::parse_header(black_box(&header)).ok()?;
            lmv1::verify(
                &h,
                secret.expose().as_bytes(),
                "POST",
                black_box(body),
                "/setting/admins",
                epoch,
            )
            .ok()
        })
    });

    c.bench_function("bearer_check_and_hash", |b| {
        let bearer = token::encode(token::TokenKind::Bearer, &[3u8; 32]);
        b.iter(|| {
            token::check(black_box(bearer.expose())).ok()?;
            Some(keys.bearer_hash(bearer.expose()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
