//! Review of custom module scripts (shell, Python, PowerShell, batch) for what needs root
//! or Administrator, naming the least-privilege alternative. [`lint`] is a pure function
//! of the text, used by `palisade-collector lint-module` and by the portal on script
//! datasources that carry their source. Every rule is a static pattern, so a finding is a
//! reason to look, and a clean result is no proof (a dry run as the service user catches
//! the rest).
//!
//! Comments are scanned too, because commented-out code tends to come back, but their
//! findings are marked `(in a comment)` and do not count. A first-line shebang is skipped;
//! `#Requires -RunAsAdministrator` is a PowerShell directive, not a comment.

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Line number, from 1.
    pub line: usize,
    /// The rule's id.
    pub rule: &'static str,
    /// What was found.
    pub finding: String,
    /// The least-privilege alternative.
    pub alternative: &'static str,
    /// Found in a comment (reported, not counted).
    pub in_comment: bool,
}

/// The rules: id and alternative.
pub const RULES: [(&str, &str); 12] = [
    ("elevation", "the collector runs as its service user: drop the elevation; if one command truly needs root, allow exactly that command in a sudoers rule (and NoNewPrivileges=no) or move it to a small privileged helper"),
    ("root-only-file", "do not read credential stores; get the fact from a tool or file the service user may read, or from device properties"),
    ("raw-socket", "use the collector's ping method (unprivileged ICMP sockets), a connect scan (nmap -sT), or a capture helper holding only CAP_NET_RAW"),
    ("low-port", "listen on a port >= 1024 (net.ipv4.ip_unprivileged_port_start), or give only CAP_NET_BIND_SERVICE to a dedicated helper"),
    ("raw-device", "read the kernel's /sys or /proc interfaces (e.g. /sys/class/dmi/id, /proc/meminfo) instead of raw devices"),
    ("dmidecode", "read the world-readable files of /sys/class/dmi/id (sys_vendor, product_name, bios_version); record serial numbers as device properties"),
    ("system-write", "write under the collector's own directories or print key=value lines; changing the system belongs to configuration management"),
    ("setuid", "never make files setuid/setgid: give a dedicated helper one capability (setcap) or allow one command in sudoers"),
    ("chown-root", "files the script creates stay the service user's; ownership is an installation step"),
    ("win-elevation", "run as the non-admin service/query account with the rights it needs (Performance Monitor Users, Event Log Readers, Remote Management Users, WMI namespace rights)"),
    ("hklm-write", "reading HKLM needs no Administrator: write under HKCU or the collector's own directory, leave machine settings to a GPO"),
    ("admin-group", "do not grant Administrators: use Performance Monitor Users, Performance Log Users, Event Log Readers, Distributed COM Users, Remote Management Users"),
];

fn alternative(rule: &str) -> &'static str {
    RULES
        .iter()
        .find(|(r, _)| *r == rule)
        .map_or("", |(_, a)| a)
}

/// Splits a line into code and comment (`#` at the start or after white space, outside
/// quotes).
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev_space => return (&line[..i], &line[i..]),
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    (line, "")
}

fn tokens(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || ";|&(){}\"'`".contains(c))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether `t` is the command `name` (also as a path: `/usr/bin/sudo`).
fn is_cmd(t: &str, name: &str) -> bool {
    t == name || t.ends_with(&format!("/{name}")) || t == format!("{name}.exe")
}

const SYSTEM_DIRS: [&str; 8] = [
    "/etc/",
    "/usr/",
    "/boot/",
    "/proc/sys/",
    "/sys/",
    "/lib/",
    "/bin/",
    "/sbin/",
];

fn system_path(t: &str) -> bool {
    let t = t.trim_start_matches(['>', '=']);
    SYSTEM_DIRS.iter().any(|d| t.starts_with(d)) || t == "/etc" || t == "/usr"
}

fn port(t: &str) -> Option<u32> {
    t.parse::<u32>().ok().filter(|p| (1..1024).contains(p))
}

/// What the rules find in one piece of text (lowercased code or comment).
fn check(l: &str) -> Vec<(&'static str, String)> {
    let t = tokens(l);
    let has = |name: &str| t.iter().any(|x| is_cmd(x, name));
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut add = |rule: &'static str, what: String| {
        if !out.iter().any(|(r, _)| *r == rule) {
            out.push((rule, what));
        }
    };
    // elevation
    for c in ["sudo", "doas", "pkexec"] {
        if has(c) {
            add("elevation", format!("`{c}` runs a command as root"));
        }
    }
    if let Some(i) = t.iter().position(|x| is_cmd(x, "su")) {
        let next = t.get(i + 1).copied().unwrap_or("");
        if next.is_empty() || next.starts_with('-') || next == "root" {
            add("elevation", "`su` switches to root".into());
        }
    }
    // root-only files
    for f in ["/etc/shadow", "/etc/gshadow", "/etc/sudoers"] {
        if l.contains(f) {
            add(
                "root-only-file",
                format!("reads {f}, readable by root only"),
            );
        }
    }
    // raw sockets
    if let Some(i) = t.iter().position(|x| is_cmd(x, "ping")) {
        if t[i + 1..].contains(&"-f") {
            add("raw-socket", "`ping -f` (flood) needs root".into());
        }
    }
    if has("nmap")
        && t.iter()
            .any(|x| matches!(*x, "-ss" | "-su" | "-o" | "-sa" | "-sn" | "-ps"))
    {
        add(
            "raw-socket",
            "an nmap raw-packet scan (-sS/-sU/-O) needs root".into(),
        );
    }
    for c in ["tcpdump", "tshark", "hping3", "arping"] {
        if has(c) {
            add(
                "raw-socket",
                format!("`{c}` opens raw sockets (root or CAP_NET_RAW)"),
            );
        }
    }
    if l.contains("sock_raw") || l.contains("scapy") {
        add(
            "raw-socket",
            "a raw socket (SOCK_RAW/scapy) needs root or CAP_NET_RAW".into(),
        );
    }
    // low ports
    let mut low = None;
    for (c, seg) in ["nc", "ncat", "netcat"]
        .iter()
        .flat_map(|c| l.split([';', '|', '&']).map(move |seg| (c, seg)))
    {
        let t = tokens(seg);
        if let Some(i) = t.iter().position(|x| is_cmd(x, c)) {
            let args = &t[i + 1..];
            if args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('l'))
            {
                let p = args
                    .iter()
                    .position(|a| a.starts_with('-') && a.ends_with('p'))
                    .and_then(|j| args.get(j + 1))
                    .or_else(|| args.iter().rev().find(|a| a.parse::<u32>().is_ok()));
                low = low.or(p.and_then(|p| port(p)));
            }
        }
    }
    for marker in ["tcp-listen:", "udp-listen:", "tcp4-listen:", "udp4-listen:"] {
        if let Some(i) = l.find(marker) {
            let digits: String = l[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            low = low.or(port(&digits));
        }
    }
    if let Some(i) = t.iter().position(|x| *x == "http.server") {
        low = low.or(t.get(i + 1).and_then(|p| port(p)));
    }
    if let Some(i) = l.find(".bind(") {
        let inner = &l[i + 6..];
        let inner = inner.split(')').next().unwrap_or("");
        let last = inner.rsplit(',').next().unwrap_or("").trim();
        low = low.or(port(last));
    }
    if let Some(p) = low {
        add(
            "low-port",
            format!("listens on port {p} (< 1024 needs root)"),
        );
    }
    // raw devices
    for d in ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/ipmi"] {
        if l.contains(d) {
            add("raw-device", format!("uses {d}"));
        }
    }
    if has("dmidecode") {
        add(
            "dmidecode",
            "`dmidecode` reads /dev/mem or the DMI tables as root".into(),
        );
    }
    // system writes
    let redirect = l.match_indices('>').any(|(i, _)| {
        let rest = l[i..].trim_start_matches('>').trim_start();
        system_path(rest)
    });
    if redirect {
        add(
            "system-write",
            "redirects output into a system directory".into(),
        );
    }
    if let Some(i) = t.iter().position(|x| is_cmd(x, "tee")) {
        if t[i + 1..].iter().any(|a| system_path(a)) {
            add(
                "system-write",
                "`tee` writes into a system directory".into(),
            );
        }
    }
    for c in ["cp", "mv", "install", "ln", "rsync"] {
        if let Some(i) = t.iter().position(|x| is_cmd(x, c)) {
            if t.len() > i + 2 && t.last().is_some_and(|a| system_path(a)) {
                add("system-write", format!("`{c}` into a system directory"));
            }
        }
    }
    if let Some(i) = t.iter().position(|x| is_cmd(x, "sed")) {
        if t[i + 1..].iter().any(|a| a.starts_with("-i")) && t.iter().any(|a| system_path(a)) {
            add("system-write", "`sed -i` edits a system file".into());
        }
    }
    if has("sysctl") && t.contains(&"-w") {
        add(
            "system-write",
            "`sysctl -w` changes a kernel setting".into(),
        );
    }
    // setuid
    if let Some(i) = t.iter().position(|x| is_cmd(x, "chmod")) {
        let setid = t[i + 1..].iter().any(|a| {
            (a.contains("+s") && !a.starts_with('/'))
                || (a.len() == 4
                    && a.chars().all(|c| ('0'..='7').contains(&c))
                    && !a.starts_with('0'))
        });
        if setid {
            add("setuid", "`chmod` sets the setuid/setgid bit".into());
        }
    }
    if let Some(i) = t.iter().position(|x| is_cmd(x, "chown")) {
        let root = t[i + 1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .take(1)
            .any(|a| {
                *a == "root"
                    || *a == "0"
                    || a.starts_with("root:")
                    || a.starts_with("root.")
                    || a.starts_with("0:")
            });
        if root {
            add("chown-root", "`chown root` gives files to root".into());
        }
    }
    // Windows
    if (l.contains("start-process") && l.contains("-verb") && l.contains("runas"))
        || has("runas")
        || l.contains("#requires -runasadministrator")
    {
        add("win-elevation", "asks for Administrator elevation".into());
    }
    let ps_write = [
        "set-itemproperty",
        "new-itemproperty",
        "remove-itemproperty",
        "new-item",
        "set-item",
        "remove-item",
    ]
    .iter()
    .any(|c| t.contains(c));
    let reg_write = t.iter().position(|x| is_cmd(x, "reg")).is_some_and(|i| {
        matches!(
            t.get(i + 1).copied(),
            Some("add" | "delete" | "import" | "copy")
        )
    });
    if (ps_write && l.contains("hklm:"))
        || (reg_write && (l.contains("hklm") || l.contains("hkey_local_machine")))
    {
        add("hklm-write", "writes under HKEY_LOCAL_MACHINE".into());
    }
    if (l.contains("net localgroup administrators")
        && (l.contains("/add") || l.contains("/delete")))
        || (l.contains("add-localgroupmember") && l.contains("administrators"))
    {
        add("admin-group", "changes the Administrators group".into());
    }
    out
}

/// Reviews a script's text.
pub fn lint(text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut block = false; // inside a PowerShell <# … #> comment
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let trimmed = line.trim_start();
        let lower_trim = trimmed.to_ascii_lowercase();
        let (code, comment): (String, String) = if block {
            match line.find("#>") {
                Some(i) => {
                    block = false;
                    (line[i + 2..].to_string(), line[..i].to_string())
                }
                None => (String::new(), line.to_string()),
            }
        } else if lineno == 1 && trimmed.starts_with("#!") {
            continue;
        } else if lower_trim.starts_with("#requires") {
            (line.to_string(), String::new())
        } else if trimmed.starts_with("<#") {
            match trimmed.find("#>") {
                Some(i) => (trimmed[i + 2..].to_string(), trimmed[..i].to_string()),
                None => {
                    block = true;
                    (String::new(), line.to_string())
                }
            }
        } else if lower_trim.starts_with("rem ") || lower_trim.starts_with("::") {
            (String::new(), line.to_string())
        } else {
            let (c, m) = split_comment(line);
            (c.to_string(), m.to_string())
        };
        for (part, in_comment) in [(code, false), (comment, true)] {
            if part.trim().is_empty() {
                continue;
            }
            for (rule, finding) in check(&part.to_ascii_lowercase()) {
                out.push(Finding {
                    line: lineno,
                    rule,
                    finding,
                    alternative: alternative(rule),
                    in_comment,
                });
            }
        }
    }
    out
}

/// `file:line: rule: finding — alternative`.
pub fn format_finding(file: &str, f: &Finding) -> String {
    format!(
        "{file}:{}: {}: {}{} — {}",
        f.line,
        f.rule,
        f.finding,
        if f.in_comment { " (in a comment)" } else { "" },
        f.alternative
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        lint(text)
            .into_iter()
            .filter(|f| !f.in_comment)
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn elevation() {
        assert_eq!(rules("sudo smartctl -a /dev/sda"), vec!["elevation"]);
        assert_eq!(rules("x=$(/usr/bin/doas cat /x)"), vec!["elevation"]);
        assert_eq!(rules("su -c 'id'"), vec!["elevation"]);
        assert_eq!(rules("pkexec id"), vec!["elevation"]);
        assert!(rules("echo pseudo sudoku; su_user=1; summary").is_empty());
    }

    #[test]
    fn root_only_files_and_devices() {
        assert_eq!(rules("grep x /etc/shadow"), vec!["root-only-file"]);
        assert_eq!(rules("cat /etc/sudoers.d/x"), vec!["root-only-file"]);
        assert_eq!(rules("dd if=/dev/mem bs=1"), vec!["raw-device"]);
        assert_eq!(
            rules("dmidecode -s system-serial-number"),
            vec!["dmidecode"]
        );
        assert!(rules("cat /etc/passwd /dev/null /sys/class/dmi/id/product_name").is_empty());
    }

    #[test]
    fn raw_sockets() {
        assert_eq!(rules("ping -f -c 10 host"), vec!["raw-socket"]);
        assert_eq!(rules("nmap -sS 10.0.0.1"), vec!["raw-socket"]);
        assert_eq!(rules("tcpdump -i eth0 -c 1"), vec!["raw-socket"]);
        assert_eq!(
            rules("s = socket.socket(AF_INET, SOCK_RAW, 1)"),
            vec!["raw-socket"]
        );
        assert!(rules("ping -c 1 host; nmap -sT host").is_empty());
    }

    #[test]
    fn low_ports() {
        assert_eq!(rules("nc -l -p 80"), vec!["low-port"]);
        assert_eq!(rules("nc -lk 514"), vec!["low-port"]);
        assert_eq!(rules("socat UDP-LISTEN:162,fork -"), vec!["low-port"]);
        assert_eq!(rules("python3 -m http.server 80"), vec!["low-port"]);
        assert_eq!(rules("s.bind(('0.0.0.0', 161))"), vec!["low-port"]);
        assert!(rules("nc -l -w 5 8080; s.bind(('', 8161)); nc host 80").is_empty());
    }

    #[test]
    fn system_writes() {
        assert_eq!(rules("echo 1 > /etc/motd"), vec!["system-write"]);
        assert_eq!(rules("echo 1 >>/proc/sys/net/x"), vec!["system-write"]);
        assert_eq!(rules("echo x | tee -a /etc/hosts"), vec!["system-write"]);
        assert_eq!(rules("cp tool /usr/local/bin/"), vec!["system-write"]);
        assert_eq!(rules("sed -i s/a/b/ /etc/x.conf"), vec!["system-write"]);
        assert_eq!(
            rules("sysctl -w net.ipv4.ip_forward=1"),
            vec!["system-write"]
        );
        assert!(
            rules("cat /etc/hosts > /tmp/x; cp /usr/share/a /tmp/b; sysctl -n x 2>/dev/null")
                .is_empty()
        );
    }

    #[test]
    fn setuid_and_chown() {
        assert_eq!(rules("chmod u+s ./helper"), vec!["setuid"]);
        assert_eq!(rules("chmod 4755 helper"), vec!["setuid"]);
        assert_eq!(rules("chown root:root x"), vec!["chown-root"]);
        assert_eq!(rules("chown -R 0 x"), vec!["chown-root"]);
        assert!(rules("chmod 0755 x; chmod +x y; chown me x").is_empty());
    }

    #[test]
    fn windows() {
        assert_eq!(
            rules("Start-Process powershell -Verb RunAs"),
            vec!["win-elevation"]
        );
        assert_eq!(
            rules("runas /user:Administrator cmd"),
            vec!["win-elevation"]
        );
        assert_eq!(
            rules("#Requires -RunAsAdministrator"),
            vec!["win-elevation"]
        );
        assert_eq!(
            rules("Set-ItemProperty -Path HKLM:\\SOFTWARE\\X -Name a -Value 1"),
            vec!["hklm-write"]
        );
        assert_eq!(
            rules("reg add HKLM\\Software\\X /v a /d 1"),
            vec!["hklm-write"]
        );
        assert_eq!(
            rules("net localgroup administrators svc /add"),
            vec!["admin-group"]
        );
        assert_eq!(
            rules("Add-LocalGroupMember -Group Administrators -Member svc"),
            vec!["admin-group"]
        );
        assert!(rules(
            "Get-ItemProperty HKLM:\\SOFTWARE\\X; reg query HKLM\\X; net localgroup administrators"
        )
        .is_empty());
    }

    #[test]
    fn comments_are_marked_not_counted() {
        let f = lint("#!/bin/sh\n# sudo was needed before\necho ok # not sudo\n<#\nStart-Process x -Verb RunAs\n#>\nREM runas /user:x y\n");
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.iter().all(|x| x.in_comment));
        assert_eq!(f[0].line, 2);
        assert_eq!(f[2].rule, "win-elevation");
        assert!(
            lint("#!/usr/bin/sudo sh\n").is_empty(),
            "the shebang is skipped"
        );
        // A # inside quotes is not a comment.
        let q = lint("echo '# x' && sudo id\n");
        assert_eq!(q.len(), 1);
        assert!(!q[0].in_comment);
    }

    #[test]
    fn format() {
        let f = &lint("sudo id\n")[0];
        let s = format_finding("m.sh", f);
        assert!(
            s.starts_with("m.sh:1: elevation: `sudo` runs a command as root — the collector"),
            "{s}"
        );
    }
}
