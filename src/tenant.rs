//! Tenants: one broker, several namespaces.
//!
//! Queue, schedule and cursor names, and outbox topics, are per tenant: tenant `acme`'s queue
//! `emails` and tenant `globex`'s `emails` are two queues. Inside the broker a name carries its
//! tenant as a prefix, `acme:emails`; the default tenant's names have none, so everything
//! created before tenants existed (or by a broker that never uses them) belongs to it unchanged.
//! `:` is outside the name alphabet (`[A-Za-z0-9._-]`), so a prefixed name cannot be confused
//! with a plain one, and a tenant's key, which may only send plain names, cannot reach another
//! tenant's namespace.
//!
//! The API shows every name split: `"queue": "emails", "tenant": "acme"`. Operator keys (and a
//! broker without keys) address another tenant's resource by its full name, `acme:emails`.

use crate::job::valid_queue_name;

/// The tenant whose names carry no prefix.
pub const DEFAULT_TENANT: &str = "default";

/// Between a tenant and a name in a full name.
pub const SEPARATOR: char = ':';

/// The header that names the tenant of an outbox message: wharf sets it on the messages a
/// tenant's key writes (the default tenant's carry none); only an operator may set it itself.
/// Topics are free text, so a message's tenant cannot be a prefix of its topic.
pub const MESSAGE_HEADER: &str = "wharf-tenant";

/// Longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

/// Whether `tenant` is a tenant name: 1 to 64 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn valid_tenant(tenant: &str) -> bool {
    tenant.len() <= MAX_TENANT_LEN && valid_queue_name(tenant)
}

/// The full name of `tenant`'s `name` (a name is valid on its own: see [`valid_full_name`]).
pub fn full_name(tenant: &str, name: &str) -> String {
    if tenant == DEFAULT_TENANT {
        name.to_owned()
    } else {
        format!("{tenant}{SEPARATOR}{name}")
    }
}

/// The tenant and the name within it of a full name.
pub fn split(full: &str) -> (&str, &str) {
    full.split_once(SEPARATOR).unwrap_or((DEFAULT_TENANT, full))
}

/// The tenant of a full name.
pub fn tenant_of(full: &str) -> &str {
    split(full).0
}

/// Whether `full` is a full name: a plain name (the default tenant's), or `tenant:name` for a
/// tenant other than the default (whose names are never prefixed, so each resource has one
/// spelling).
pub fn valid_full_name(full: &str) -> bool {
    match full.split_once(SEPARATOR) {
        None => valid_queue_name(full),
        Some((tenant, name)) => {
            tenant != DEFAULT_TENANT && valid_tenant(tenant) && valid_queue_name(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_round_trip_and_the_default_tenant_has_no_prefix() {
        assert_eq!(full_name(DEFAULT_TENANT, "emails"), "emails");
        assert_eq!(full_name("acme", "emails"), "acme:emails");
        for (tenant, name) in [("acme", "emails"), (DEFAULT_TENANT, "q.1"), ("a-b", "x_y")] {
            let full = full_name(tenant, name);
            assert!(valid_full_name(&full), "{full}");
            assert_eq!(split(&full), (tenant, name));
            assert_eq!(tenant_of(&full), tenant);
        }
    }

    #[test]
    fn only_one_spelling_of_a_name_is_valid() {
        for bad in [
            "",
            ":emails",
            "acme:",
            "default:emails",
            "a:b:c",
            "acme/x:emails",
            "acme: emails",
            &format!("{}:q", "t".repeat(MAX_TENANT_LEN + 1)),
        ] {
            assert!(!valid_full_name(bad), "{bad:?} accepted");
        }
        assert!(valid_full_name(&format!(
            "{}:q",
            "t".repeat(MAX_TENANT_LEN)
        )));
        assert!(valid_tenant(DEFAULT_TENANT));
        assert!(!valid_tenant("*") && !valid_tenant("a:b") && !valid_tenant(".."));
    }
}
