//! Why a libvirt connection was refused, in words an operator can act on (pure).
//!
//! vmpulse only reads, so it connects read-only (as virt-top does); libvirt's
//! read-only socket is open to local users by default. Where a host's policy
//! still refuses the user, libvirt answers with messages such as "Unable to get
//! system bus connection" or "Permission denied": this names the fix instead.

/// libvirt's answer, plus the fix when the answer is about permissions.
pub fn explain(uri: &str, message: &str, user: Option<&str>) -> String {
    if !is_permission_problem(message) {
        return message.to_string();
    }
    let user = user.filter(|u| !u.is_empty()).unwrap_or("USER");
    let session = if uri.starts_with("qemu:///system") || uri.starts_with("qemu+unix:///system") {
        ", or watch your own VMs with --connect qemu:///session"
    } else {
        ""
    };
    format!(
        "{message}: permission denied for user '{user}'; add the user to the libvirt group \
         (sudo usermod -aG libvirt {user}, then log in again){session}"
    )
}

fn is_permission_problem(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "permission denied",
        "authentication failed",
        "authentication unavailable",
        "access denied",
        "unable to get system bus connection",
        "not authorized",
        "polkit",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The name of the user running this process, for the message.
pub fn current_user() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_answers_name_the_group_and_the_session_uri() {
        let e = explain(
            "qemu:///system",
            "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied",
            Some("alice"),
        );
        assert!(e.starts_with("Failed to connect socket"), "{e}");
        assert!(e.contains("sudo usermod -aG libvirt alice"), "{e}");
        assert!(e.contains("qemu:///session"), "{e}");
        let e = explain(
            "qemu:///system",
            "Unable to get system bus connection",
            None,
        );
        assert!(e.contains("usermod -aG libvirt USER"), "{e}");
    }

    #[test]
    fn other_answers_pass_through_unchanged() {
        let m = "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory";
        assert_eq!(explain("qemu:///system", m, Some("bob")), m);
        let e = explain(
            "qemu+ssh://h/system",
            "Permission denied (publickey)",
            Some("bob"),
        );
        assert!(
            e.contains("usermod") && !e.contains("qemu:///session"),
            "{e}"
        );
    }
}
