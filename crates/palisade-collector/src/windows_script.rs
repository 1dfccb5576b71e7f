//! `palisade-collector windows-nonadmin-script --account NAME`: the PowerShell script that
//! gives a Windows account the rights mandate §3 lists for monitoring without
//! Administrator, for one host or as a GPO startup script.
//!
//! [`generate`] is a pure function of [`ScriptOptions`]: the same options give the same
//! bytes. The script (Windows PowerShell 5.1, `Set-StrictMode -Version Latest`,
//! `$ErrorActionPreference = 'Stop'`) resolves the account to a SID and then, checking
//! before every change so that a second run changes nothing:
//!
//! 1. adds it to Performance Monitor Users, Performance Log Users, Event Log Readers,
//!    Distributed COM Users and Remote Management Users (by well-known SID);
//! 2. grants Enable Account + Remote Enable, container-inherited, on `root\cimv2` (and any
//!    `--wmi-namespace`) through `__SystemSecurity` `GetSecurityDescriptor` /
//!    `SetSecurityDescriptor`;
//! 3. appends `(A;;CCLCRPRC;;;SID)` to the service control manager's SDDL
//!    (`sc.exe sdshow/sdset scmanager`);
//! 4. appends `(A;;CCLCSWLORC;;;SID)` (read) to every service's SDDL, or those named;
//! 5. ensures the WinRM service, an HTTPS listener (certificate: `auto`, `self-signed` or a
//!    thumbprint) and a firewall rule for TCP 5986.
//!
//! Every value from the command line is validated against a strict ASCII whitelist before
//! it is written into the script, and written only inside single-quoted PowerShell
//! literals (or comments): nothing a user passes can end a string, start a command or add
//! an ACE. The script is checked for syntax in tests (tree-sitter-powershell, see
//! `tests/powershell-parse/`); it has not been run on Windows here.

use std::path::PathBuf;

/// Exit code: script written.
pub const EXIT_OK: u8 = 0;
/// Exit code: an argument was refused (nothing written).
pub const EXIT_REFUSED: u8 = crate::EXIT_CONFIG;
/// Exit code: the output file could not be written.
pub const EXIT_FAILED: u8 = 1;

/// The WMI namespace every script grants.
pub const DEFAULT_WMI_NAMESPACE: &str = "root\\cimv2";

/// `windows-nonadmin-script`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ScriptArgs {
    /// The monitoring account: `name` (local), `DOMAIN\name`, a gMSA `DOMAIN\name$`, or a
    /// virtual service account `NT SERVICE\name`. Letters, digits, `.`, `-`, `_` (and one
    /// final `$`); the domain may also hold single spaces.
    #[arg(long)]
    pub account: String,
    /// Write the script to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// GPO startup-script variant: requires a domain-qualified account, and writes a
    /// transcript to %SystemRoot%\Logs\Palisade\collector-nonadmin.log on every run.
    #[arg(long)]
    pub gpo: bool,
    /// Another WMI namespace to grant besides root\cimv2 (repeatable), e.g.
    /// `root\virtualization\v2`.
    #[arg(long = "wmi-namespace", value_name = "NAMESPACE")]
    pub wmi_namespaces: Vec<String>,
    /// Grant read access on these services only (repeatable). Default: every service of the
    /// host, protected ones skipped with a message.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The WinRM HTTPS certificate the script uses by default (`-WinRmCertificate` overrides
    /// it per run): `auto` (a CA-issued Server Authentication certificate for the host's
    /// FQDN in LocalMachine\My), `self-signed` (created by the script; the collector must
    /// trust it explicitly), or a 40-hex-digit thumbprint.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|self-signed|THUMBPRINT"
    )]
    pub winrm_certificate: String,
}

/// The generator's input, validated by [`ScriptOptions::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOptions {
    account: Account,
    gpo: bool,
    wmi_namespaces: Vec<String>,
    services: Vec<String>,
    winrm_certificate: String,
}

/// A validated account name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The domain part (`CORP`, `NT SERVICE`), if any.
    pub domain: Option<String>,
    /// The name.
    pub name: String,
}

impl Account {
    /// `DOMAIN\name` or `name`.
    pub fn full(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}\\{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Why an argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// `--account`.
    #[error("invalid --account `{shown}`: {why}")]
    Account {
        /// The value, with anything but printable ASCII escaped.
        shown: String,
        /// Why.
        why: String,
    },
    /// Another flag.
    #[error("invalid {flag} `{shown}`: {why}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// The value, escaped.
        shown: String,
        /// Why.
        why: String,
    },
}

fn shown(s: &str) -> String {
    s.chars().flat_map(char::escape_default).take(120).collect()
}

fn account_err(s: &str, why: &str) -> ScriptError {
    ScriptError::Account {
        shown: shown(s),
        why: why.to_string(),
    }
}

fn flag_err(flag: &'static str, s: &str, why: &str) -> ScriptError {
    ScriptError::Flag {
        flag,
        shown: shown(s),
        why: why.to_string(),
    }
}

/// Principals that are built in, shared or administrative: never the monitoring account.
const REFUSED_NAMES: [&str; 10] = [
    "administrator",
    "administrators",
    "system",
    "localsystem",
    "localservice",
    "networkservice",
    "guest",
    "everyone",
    "krbtgt",
    "defaultaccount",
];
const REFUSED_DOMAINS: [&str; 2] = ["nt authority", "builtin"];

/// Validates an account name: ASCII letters, digits, `.`, `-`, `_` in the name (64 at
/// most, starting with a letter, digit or `_`, not ending with `.`), optionally one final
/// `$` (gMSA); an optional `DOMAIN\` prefix of letters, digits, `.`, `-`, `_` and single
/// inner spaces (`NT SERVICE`). Quotes of every kind, `$` elsewhere, `` ` ``, `;`, `(`,
/// `)`, `@`, white space in the name, control characters and non-ASCII are refused, as
/// are built-in and administrative principals.
pub fn validate_account(input: &str) -> Result<Account, ScriptError> {
    if input.is_empty() {
        return Err(account_err(input, "empty"));
    }
    if !input.is_ascii() {
        return Err(account_err(input, "only ASCII characters are accepted"));
    }
    let (domain, name) = match input.split_once('\\') {
        Some((d, n)) => (Some(d), n),
        None => (None, input),
    };
    if name.contains('\\') {
        return Err(account_err(input, "more than one `\\`"));
    }
    if name.contains('@') {
        return Err(account_err(
            input,
            "user principal names (name@domain) are not accepted: use DOMAIN\\name",
        ));
    }
    let base = name.strip_suffix('$').unwrap_or(name);
    if base.is_empty() || base.len() > 64 {
        return Err(account_err(input, "the name must have 1 to 64 characters"));
    }
    if let Some(bad) = base
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(account_err(
            input,
            &format!(
                "`{}` is not allowed in a name (letters, digits, `.`, `-`, `_`, and one final `$`)",
                bad.escape_default()
            ),
        ));
    }
    if !base.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') || base.ends_with('.') {
        return Err(account_err(
            input,
            "the name must start with a letter, digit or `_` and not end with `.`",
        ));
    }
    if let Some(d) = domain {
        if d.is_empty() || d.len() > 64 {
            return Err(account_err(
                input,
                "the domain must have 1 to 64 characters",
            ));
        }
        if let Some(bad) = d
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ')))
        {
            return Err(account_err(
                input,
                &format!("`{}` is not allowed in a domain", bad.escape_default()),
            ));
        }
        if !d.starts_with(|c: char| c.is_ascii_alphanumeric())
            || d.ends_with(' ')
            || d.contains("  ")
        {
            return Err(account_err(
                input,
                "the domain must start with a letter or digit and hold only single inner spaces",
            ));
        }
        if REFUSED_DOMAINS.contains(&d.to_ascii_lowercase().as_str()) {
            return Err(account_err(
                input,
                "built-in principals (NT AUTHORITY, BUILTIN) are shared or administrative: use a dedicated account",
            ));
        }
    }
    if REFUSED_NAMES.contains(&base.to_ascii_lowercase().as_str()) {
        return Err(account_err(
            input,
            "a built-in, shared or administrative principal: use a dedicated account",
        ));
    }
    Ok(Account {
        domain: domain.map(str::to_string),
        name: name.to_string(),
    })
}

/// `root` or `root\Segment\…`, segments of letters, digits and `_`; returned as given.
pub fn validate_wmi_namespace(input: &str) -> Result<String, ScriptError> {
    let mut parts = input.split('\\');
    let ok = parts.next().is_some_and(|r| r.eq_ignore_ascii_case("root"))
        && parts.all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        && input.len() <= 256;
    if ok {
        Ok(input.to_string())
    } else {
        Err(flag_err(
            "--wmi-namespace",
            input,
            "expected root\\Name\\… (letters, digits, `_`)",
        ))
    }
}

/// A service name: letters, digits, `.`, `-`, `_`, `$` (`MSSQL$INSTANCE`), 1 to 256.
pub fn validate_service(input: &str) -> Result<String, ScriptError> {
    let ok = !input.is_empty()
        && input.len() <= 256
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '$'))
        && !input.eq_ignore_ascii_case("scmanager");
    if ok {
        Ok(input.to_string())
    } else {
        Err(flag_err(
            "--service",
            input,
            "expected a service name (letters, digits, `.`, `-`, `_`, `$`); the service control manager is always handled",
        ))
    }
}

/// `auto`, `self-signed`, or 40 hex digits (upper-cased).
pub fn validate_winrm_certificate(input: &str) -> Result<String, ScriptError> {
    match input {
        "auto" | "self-signed" => Ok(input.to_string()),
        t if t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(t.to_ascii_uppercase())
        }
        _ => Err(flag_err(
            "--winrm-certificate",
            input,
            "expected auto, self-signed or a 40-hex-digit thumbprint",
        )),
    }
}

impl ScriptOptions {
    /// Validates every value.
    pub fn new(
        account: &str,
        gpo: bool,
        wmi_namespaces: &[String],
        services: &[String],
        winrm_certificate: &str,
    ) -> Result<ScriptOptions, ScriptError> {
        let account = validate_account(account)?;
        if gpo && account.domain.is_none() {
            return Err(account_err(
                account.name.as_str(),
                "--gpo needs a domain-qualified account (DOMAIN\\name, DOMAIN\\gmsa$ or NT SERVICE\\name): a local name means a different account on every host",
            ));
        }
        let mut namespaces = vec![DEFAULT_WMI_NAMESPACE.to_string()];
        for n in wmi_namespaces {
            let n = validate_wmi_namespace(n)?;
            if !namespaces.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
                namespaces.push(n);
            }
        }
        let mut svc: Vec<String> = Vec::new();
        for s in services {
            let s = validate_service(s)?;
            if !svc.iter().any(|m| m.eq_ignore_ascii_case(&s)) {
                svc.push(s);
            }
        }
        Ok(ScriptOptions {
            account,
            gpo,
            wmi_namespaces: namespaces,
            services: svc,
            winrm_certificate: validate_winrm_certificate(winrm_certificate)?,
        })
    }

    /// From the command line.
    pub fn from_args(a: &ScriptArgs) -> Result<ScriptOptions, ScriptError> {
        ScriptOptions::new(
            &a.account,
            a.gpo,
            &a.wmi_namespaces,
            &a.services,
            &a.winrm_certificate,
        )
    }

    /// The validated account.
    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// A single-quoted PowerShell literal. Values are validated first; doubling every quote
/// PowerShell treats as a single quote (`'`, U+2018 to U+201B) is the second line of
/// defence.
pub fn ps_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn ps_array(items: &[String]) -> String {
    items
        .iter()
        .map(|s| ps_literal(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command line that regenerates the same script (for its header).
fn command_line(o: &ScriptOptions) -> String {
    let mut c = format!(
        "palisade-collector windows-nonadmin-script --account {}",
        ps_literal(&o.account.full())
    );
    if o.gpo {
        c.push_str(" --gpo");
    }
    for n in o.wmi_namespaces.iter().skip(1) {
        c.push_str(&format!(" --wmi-namespace {}", ps_literal(n)));
    }
    for s in &o.services {
        c.push_str(&format!(" --service {}", ps_literal(s)));
    }
    if o.winrm_certificate != "auto" {
        c.push_str(&format!(" --winrm-certificate {}", o.winrm_certificate));
    }
    c
}

const RUN_PER_HOST: &str = "    Run it once per host, in an elevated Windows PowerShell 5.1:
        powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\\palisade-nonadmin.ps1
    (add -WinRmCertificate self-signed or -WinRmCertificate THUMBPRINT to override the
    certificate choice). Run it again after installing services that must be monitored.";

const RUN_GPO: &str =
    "    GPO startup script: in the Group Policy Management Editor, Computer Configuration >
    Policies > Windows Settings > Scripts (Startup/Shutdown) > Startup > PowerShell Scripts >
    Add this file (script parameters: none, or -WinRmCertificate ...). It runs as SYSTEM
    at every start of the computers the GPO applies to (not on domain controllers), so
    services installed later get their ACE at the next start. The output of every run is
    appended to %SystemRoot%\\Logs\\Palisade\\collector-nonadmin.log. Under an AllSigned
    execution policy, sign this file first.";

/// The PowerShell script, as text (ASCII, LF line ends).
pub fn generate(o: &ScriptOptions) -> String {
    let account = o.account.full();
    let services_comment = if o.services.is_empty() {
        "every service of the host (protected ones are skipped with a message)".to_string()
    } else {
        format!("the services {}", ps_array(&o.services))
    };
    let replacements: [(&str, String); 12] = [
        (
            "@@MODE_TITLE@@",
            if o.gpo {
                "GPO startup-script variant.".to_string()
            } else {
                "Per-host variant.".to_string()
            },
        ),
        ("@@VERSION@@", env!("CARGO_PKG_VERSION").to_string()),
        ("@@COMMAND@@", command_line(o)),
        ("@@ACCOUNT_COMMENT@@", ps_literal(&account)),
        ("@@NAMESPACES_COMMENT@@", ps_array(&o.wmi_namespaces)),
        ("@@SERVICES_COMMENT@@", services_comment),
        (
            "@@RUN_HELP@@",
            if o.gpo { RUN_GPO } else { RUN_PER_HOST }.to_string(),
        ),
        ("@@WINRM_DEFAULT@@", o.winrm_certificate.clone()),
        ("@@ACCOUNT_LITERAL@@", ps_literal(&account)),
        ("@@NAMESPACES_LITERAL@@", ps_array(&o.wmi_namespaces)),
        ("@@SERVICES_LITERAL@@", ps_array(&o.services)),
        (
            "@@GPO_LITERAL@@",
            if o.gpo { "$true" } else { "$false" }.to_string(),
        ),
    ];
    let mut out = TEMPLATE.to_string();
    for (k, v) in &replacements {
        out = out.replace(k, v);
    }
    out
}

/// `windows-nonadmin-script`: validates, generates, writes. Returns the exit code.
pub fn main(a: &ScriptArgs) -> u8 {
    let options = match ScriptOptions::from_args(a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("palisade-collector windows-nonadmin-script: {e}");
            return EXIT_REFUSED;
        }
    };
    let script = generate(&options);
    match &a.output {
        None => {
            print!("{script}");
            EXIT_OK
        }
        Some(path) => match std::fs::write(path, script.as_bytes()) {
            Ok(()) => {
                eprintln!(
                    "palisade-collector windows-nonadmin-script: wrote {} for {}",
                    path.display(),
                    options.account.full()
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!(
                    "palisade-collector windows-nonadmin-script: cannot write {}: {e}",
                    path.display()
                );
                EXIT_FAILED
            }
        },
    }
}

/// The script with its `@@…@@` placeholders.
const TEMPLATE: &str = r##"#Requires -Version 5.1
#Requires -PSEdition Desktop
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Palisade collector: non-administrator monitoring rights for one account (security
    mandate 3). @@MODE_TITLE@@

.DESCRIPTION
    Generated by palisade-collector @@VERSION@@:
        @@COMMAND@@
    Do not edit by hand: generate it again with other flags.

    For the account @@ACCOUNT_COMMENT@@ it:
      1. adds it to the local groups Performance Monitor Users, Performance Log Users,
         Event Log Readers, Distributed COM Users and Remote Management Users (found by
         their well-known SIDs, so that localized group names do not matter);
      2. grants it Enable Account + Remote Enable (0x21), inherited by sub-namespaces
         (CONTAINER_INHERIT_ACE), on the WMI namespaces @@NAMESPACES_COMMENT@@,
         through __SystemSecurity GetSecurityDescriptor / SetSecurityDescriptor;
      3. appends (A;;CCLCRPRC;;;<SID>) to the service control manager's SDDL
         (sc.exe sdshow/sdset scmanager: connect, enumerate, query lock status, read);
      4. appends (A;;CCLCSWLORC;;;<SID>) (generic read: query config and status,
         enumerate dependents, interrogate, read control) to the SDDL of
         @@SERVICES_COMMENT@@;
         never change-config, start, stop or write rights;
      5. makes sure the WinRM service runs and has an HTTPS listener (TCP 5986) with a
         certificate chosen by -WinRmCertificate, and an inbound firewall rule for TCP
         5986 (Domain and Private profiles).

    Idempotent: every step checks first and changes only what is missing; a second run
    reports every step as [unchanged]. Every line of output is one step:
    [changed], [unchanged], [skipped] or [warning]. Any error stops the script (exit 1).
    It never removes a right, a group member or a listener. Windows PowerShell 5.1
    (powershell.exe) on Windows Server 2016 / Windows 10 or later; not on a domain
    controller.

@@RUN_HELP@@

.PARAMETER WinRmCertificate
    'auto' (pick the valid certificate with the Server Authentication EKU for this host's
    FQDN from Cert:\LocalMachine\My, e.g. enrolled from the domain's CA), 'self-signed'
    (create, or reuse, a SELF-SIGNED certificate: the collector must then be told to trust
    that certificate), or the 40-hex-digit thumbprint of a certificate in
    Cert:\LocalMachine\My. Default chosen at generation: '@@WINRM_DEFAULT@@'.
#>
[CmdletBinding()]
param(
    [ValidatePattern('^(auto|self-signed|[0-9A-Fa-f]{40})$')]
    [string]$WinRmCertificate = '@@WINRM_DEFAULT@@'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# ---------------------------------------------------------------- generated settings
$AccountName = @@ACCOUNT_LITERAL@@
$WmiNamespaces = @(@@NAMESPACES_LITERAL@@)
# Empty: every service of the host (Win32_Service).
$ServiceNames = @(@@SERVICES_LITERAL@@)
$GpoMode = @@GPO_LITERAL@@

# ---------------------------------------------------------------- constants
# Local groups by well-known SID (their names are localized).
$MonitoringGroups = [ordered]@{
    'S-1-5-32-558' = 'Performance Monitor Users'
    'S-1-5-32-559' = 'Performance Log Users'
    'S-1-5-32-573' = 'Event Log Readers'
    'S-1-5-32-562' = 'Distributed COM Users'
    'S-1-5-32-580' = 'Remote Management Users'
}
# WMI namespace rights (WBEM_ENABLE | WBEM_REMOTE_ACCESS) and ACE fields.
$WbemEnable = 0x1
$WbemRemoteAccess = 0x20
$WmiAccessMask = $WbemEnable -bor $WbemRemoteAccess
$AccessAllowedAceType = 0x0
$ContainerInheritAce = 0x2
# Service control manager: CC connect, LC enumerate, RP query lock status, RC read control.
$ScmRights = 'CCLCRPRC'
$ScmMask = 0x1 -bor 0x4 -bor 0x10 -bor 0x20000
# A service, generic read: CC query config, LC query status, SW enumerate dependents,
# LO interrogate, RC read control.
$ServiceRights = 'CCLCSWLORC'
$ServiceMask = 0x1 -bor 0x4 -bor 0x8 -bor 0x80 -bor 0x20000
$WinRmHttpsPort = 5986
$FirewallRuleName = 'Palisade-Collector-WinRM-HTTPS-In'
$SelfSignedFriendlyName = 'Palisade collector WinRM HTTPS (SELF-SIGNED)'
$ServerAuthenticationOid = '1.3.6.1.5.5.7.3.1'

$script:ChangedCount = 0
$script:UnchangedCount = 0
$script:SkippedCount = 0

# ---------------------------------------------------------------- helpers
function Write-Step {
    param(
        [Parameter(Mandatory = $true)]
        [ValidateSet('changed', 'unchanged', 'skipped', 'warning')]
        [string]$Status,
        [Parameter(Mandatory = $true)]
        [string]$Message
    )
    switch ($Status) {
        'changed' { $script:ChangedCount++ }
        'unchanged' { $script:UnchangedCount++ }
        'skipped' { $script:SkippedCount++ }
    }
    Write-Output ('[{0}] {1}' -f $Status, $Message)
}

function Get-OptionalProperty {
    param($Object, [string]$Name)
    if ($null -eq $Object) { return $null }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return $property.Value
}

function Resolve-AccountSid {
    param([Parameter(Mandatory = $true)][string]$Name)
    try {
        $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Name
        $sid = $account.Translate([System.Security.Principal.SecurityIdentifier])
    } catch {
        throw ('Cannot resolve the account {0} to a SID: {1}' -f $Name, $_.Exception.Message)
    }
    return $sid.Value
}

function Assert-NonAdminAccount {
    param([Parameter(Mandatory = $true)][string]$Sid)
    $refused = @{
        'S-1-1-0' = 'Everyone'
        'S-1-5-4' = 'Interactive'
        'S-1-5-7' = 'Anonymous Logon'
        'S-1-5-11' = 'Authenticated Users'
        'S-1-5-18' = 'LocalSystem'
        'S-1-5-19' = 'LocalService'
        'S-1-5-20' = 'NetworkService'
    }
    if ($refused.ContainsKey($Sid)) {
        throw ('{0} ({1}) is a shared or built-in principal: use a dedicated account' -f $Sid, $refused[$Sid])
    }
    if ($Sid.StartsWith('S-1-5-32-')) {
        throw ('{0} is a BUILTIN group: use a dedicated account' -f $Sid)
    }
    if ($Sid -match '^S-1-5-21-.+-(500|512|516|518|519)$') {
        throw ('{0} is the built-in Administrator or an administrative domain group' -f $Sid)
    }
    try {
        $admins = @(Get-LocalGroupMember -SID 'S-1-5-32-544')
        $direct = @($admins | Where-Object { $_.SID.Value -eq $Sid })
        if ($direct.Count -gt 0) {
            Write-Step -Status warning -Message ('{0} is a member of the local Administrators group: remove it there (this script does not); the collector reports it as an admin account until then' -f $AccountName)
        }
    } catch {
        Write-Step -Status warning -Message ('could not list the local Administrators group ({0}); check by hand that {1} is not a member' -f $_.Exception.Message, $AccountName)
    }
}

function Get-HostFqdn {
    param([Parameter(Mandatory = $true)]$ComputerSystem)
    if ($ComputerSystem.PartOfDomain) {
        return ('{0}.{1}' -f $ComputerSystem.DNSHostName, $ComputerSystem.Domain)
    }
    return [string]$ComputerSystem.DNSHostName
}

# ---------------------------------------------------------------- 1. local groups
function Add-MonitoringGroupMembership {
    param([Parameter(Mandatory = $true)][string]$Sid)
    foreach ($groupSid in $MonitoringGroups.Keys) {
        $group = Get-LocalGroup -SID $groupSid
        try {
            Add-LocalGroupMember -SID $groupSid -Member $Sid
            Write-Step -Status changed -Message ('group {0} ({1}): added {2}' -f $group.Name, $groupSid, $AccountName)
        } catch [Microsoft.PowerShell.Commands.MemberExistsException] {
            Write-Step -Status unchanged -Message ('group {0} ({1}): {2} already a member' -f $group.Name, $groupSid, $AccountName)
        }
    }
}

# ---------------------------------------------------------------- 2. WMI namespace security
function Test-WmiAceGranted {
    param([Parameter(Mandatory = $true)]$Descriptor, [Parameter(Mandatory = $true)][string]$Sid)
    foreach ($ace in @($Descriptor.DACL)) {
        if ($null -eq $ace) { continue }
        if ($ace.AceType -ne $AccessAllowedAceType) { continue }
        $trustee = Get-OptionalProperty -Object $ace -Name 'Trustee'
        if ((Get-OptionalProperty -Object $trustee -Name 'SidString') -ne $Sid) { continue }
        if (($ace.AccessMask -band $WmiAccessMask) -ne $WmiAccessMask) { continue }
        if (($ace.AceFlags -band $ContainerInheritAce) -eq 0) { continue }
        return $true
    }
    return $false
}

function Grant-WmiNamespaceAccess {
    param([Parameter(Mandatory = $true)][string]$Namespace, [Parameter(Mandatory = $true)][string]$Sid)
    $path = '__SystemSecurity=@'
    $got = Invoke-WmiMethod -Namespace $Namespace -Path $path -Name GetSecurityDescriptor
    if ($got.ReturnValue -ne 0) {
        throw ('WMI {0}: GetSecurityDescriptor returned {1}' -f $Namespace, $got.ReturnValue)
    }
    $descriptor = $got.Descriptor
    if ($null -eq $descriptor.DACL) {
        throw ('WMI {0}: the security descriptor has no DACL; refusing to create one' -f $Namespace)
    }
    if (Test-WmiAceGranted -Descriptor $descriptor -Sid $Sid) {
        Write-Step -Status unchanged -Message ('WMI {0}: {1} already has Enable Account + Remote Enable (inherited)' -f $Namespace, $AccountName)
        return
    }
    $trustee = ([wmiclass]'Win32_Trustee').CreateInstance()
    $trustee.SidString = $Sid
    $ace = ([wmiclass]'Win32_ACE').CreateInstance()
    $ace.AccessMask = $WmiAccessMask
    $ace.AceFlags = $ContainerInheritAce
    $ace.AceType = $AccessAllowedAceType
    $ace.Trustee = $trustee
    $descriptor.DACL += $ace.psobject.ImmediateBaseObject
    $set = Invoke-WmiMethod -Namespace $Namespace -Path $path -Name SetSecurityDescriptor -ArgumentList $descriptor.psobject.ImmediateBaseObject
    if ($set.ReturnValue -ne 0) {
        throw ('WMI {0}: SetSecurityDescriptor returned {1}' -f $Namespace, $set.ReturnValue)
    }
    $check = Invoke-WmiMethod -Namespace $Namespace -Path $path -Name GetSecurityDescriptor
    if (-not (Test-WmiAceGranted -Descriptor $check.Descriptor -Sid $Sid)) {
        throw ('WMI {0}: the new ACE is not in the security descriptor after SetSecurityDescriptor' -f $Namespace)
    }
    Write-Step -Status changed -Message ('WMI {0}: granted {1} Enable Account + Remote Enable (0x{2:X}, container inherit)' -f $Namespace, $AccountName, $WmiAccessMask)
}

# ---------------------------------------------------------------- 3./4. SCM and service SDDL
function Get-ServiceSddl {
    param([Parameter(Mandatory = $true)][string]$Name)
    $lines = @(& sc.exe sdshow $Name)
    if ($LASTEXITCODE -ne 0) {
        throw ('sc.exe sdshow {0} failed (exit {1}): {2}' -f $Name, $LASTEXITCODE, ($lines -join ' '))
    }
    $sddl = @($lines | Where-Object { $_ -match '^\s*[OGDS]:' })
    if ($sddl.Count -ne 1) {
        throw ('sc.exe sdshow {0}: unexpected output: {1}' -f $Name, ($lines -join ' '))
    }
    return $sddl[0].Trim()
}

function Test-SddlGrants {
    param(
        [Parameter(Mandatory = $true)][string]$Sddl,
        [Parameter(Mandatory = $true)][string]$Sid,
        [Parameter(Mandatory = $true)][int]$Mask
    )
    $descriptor = New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList $Sddl
    if ($null -eq $descriptor.DiscretionaryAcl) { return $false }
    foreach ($ace in $descriptor.DiscretionaryAcl) {
        if ($ace -isnot [System.Security.AccessControl.CommonAce]) { continue }
        if ($ace.AceQualifier -ne [System.Security.AccessControl.AceQualifier]::AccessAllowed) { continue }
        if ($ace.SecurityIdentifier.Value -ne $Sid) { continue }
        if (($ace.AccessMask -band $Mask) -ne $Mask) { continue }
        return $true
    }
    return $false
}

# Inserts $Ace at the end of the DACL (D:...), before the SACL (S:...) if there is one.
function Add-DaclAce {
    param([Parameter(Mandatory = $true)][string]$Sddl, [Parameter(Mandatory = $true)][string]$Ace)
    $depth = 0
    $daclAt = -1
    $saclAt = -1
    for ($i = 0; $i -lt $Sddl.Length; $i++) {
        $c = $Sddl[$i]
        if ($c -ceq '(') {
            $depth++
        } elseif ($c -ceq ')') {
            $depth--
        } elseif ($c -ceq ':' -and $depth -eq 0 -and $i -gt 0) {
            if ($Sddl[$i - 1] -ceq 'D') {
                $daclAt = $i - 1
            } elseif ($Sddl[$i - 1] -ceq 'S' -and $daclAt -ge 0) {
                $saclAt = $i - 1
            }
        }
    }
    if ($depth -ne 0) { throw ('unbalanced SDDL: {0}' -f $Sddl) }
    if ($daclAt -lt 0) { throw ('no DACL in SDDL: {0}' -f $Sddl) }
    if ($saclAt -lt 0) { return $Sddl + $Ace }
    return $Sddl.Substring(0, $saclAt) + $Ace + $Sddl.Substring($saclAt)
}

function Grant-ServiceObjectRead {
    param(
        [Parameter(Mandatory = $true)][string]$Name,
        [Parameter(Mandatory = $true)][string]$Rights,
        [Parameter(Mandatory = $true)][int]$Mask,
        [Parameter(Mandatory = $true)][string]$Sid,
        [Parameter(Mandatory = $true)][string]$Label
    )
    $old = Get-ServiceSddl -Name $Name
    if (Test-SddlGrants -Sddl $old -Sid $Sid -Mask $Mask) {
        Write-Step -Status unchanged -Message ('{0}: {1} already has {2}' -f $Label, $AccountName, $Rights)
        return
    }
    $ace = '(A;;{0};;;{1})' -f $Rights, $Sid
    $new = Add-DaclAce -Sddl $old -Ace $ace
    # Parse the new descriptor before sc.exe sees it.
    if (-not (Test-SddlGrants -Sddl $new -Sid $Sid -Mask $Mask)) {
        throw ('{0}: the composed SDDL does not grant the rights: {1}' -f $Label, $new)
    }
    $out = @(& sc.exe sdset $Name $new)
    if ($LASTEXITCODE -ne 0) {
        throw ('sc.exe sdset {0} failed (exit {1}): {2}' -f $Name, $LASTEXITCODE, ($out -join ' '))
    }
    if (-not (Test-SddlGrants -Sddl (Get-ServiceSddl -Name $Name) -Sid $Sid -Mask $Mask)) {
        throw ('{0}: the ACE is missing after sc.exe sdset' -f $Label)
    }
    Write-Step -Status changed -Message ('{0}: appended {1} (was {2})' -f $Label, $ace, $old)
}

function Grant-ServicesRead {
    param([Parameter(Mandatory = $true)][string]$Sid)
    if ($ServiceNames.Count -gt 0) {
        # Named services: any failure is an error.
        foreach ($name in $ServiceNames) {
            Grant-ServiceObjectRead -Name $name -Rights $ServiceRights -Mask $ServiceMask -Sid $Sid -Label ('service {0}' -f $name)
        }
        return
    }
    $names = @(Get-CimInstance -ClassName Win32_Service | ForEach-Object { [string]$_.Name } | Sort-Object -Unique)
    foreach ($name in $names) {
        try {
            Grant-ServiceObjectRead -Name $name -Rights $ServiceRights -Mask $ServiceMask -Sid $Sid -Label ('service {0}' -f $name)
        } catch {
            # Protected services refuse even administrators; they stay as they are.
            Write-Step -Status skipped -Message ('service {0}: {1}' -f $name, $_.Exception.Message)
        }
    }
}

# ---------------------------------------------------------------- 5. WinRM over HTTPS
function Test-ServerCertificate {
    param([Parameter(Mandatory = $true)]$Certificate, [Parameter(Mandatory = $true)][string]$Fqdn)
    $now = Get-Date
    if (-not $Certificate.HasPrivateKey) { return $false }
    if ($Certificate.NotBefore -gt $now -or $Certificate.NotAfter -le $now.AddDays(1)) { return $false }
    $serverAuth = @($Certificate.EnhancedKeyUsageList | Where-Object { $_.ObjectId -eq $ServerAuthenticationOid })
    if ($serverAuth.Count -eq 0) { return $false }
    $names = @($Certificate.DnsNameList | Where-Object { $_.Unicode -eq $Fqdn })
    return ($names.Count -gt 0)
}

# Returns the certificate to use and prints nothing (a returned value would mix with output).
function Select-WinRmCertificate {
    param([Parameter(Mandatory = $true)][string]$Mode, [Parameter(Mandatory = $true)][string]$Fqdn)
    if ($Mode -match '^[0-9A-Fa-f]{40}$') {
        $path = 'Cert:\LocalMachine\My\{0}' -f $Mode.ToUpperInvariant()
        if (-not (Test-Path -LiteralPath $path)) {
            throw ('no certificate {0} in Cert:\LocalMachine\My' -f $Mode)
        }
        $certificate = Get-Item -LiteralPath $path
        if (-not (Test-ServerCertificate -Certificate $certificate -Fqdn $Fqdn)) {
            throw ('certificate {0} is not usable for WinRM HTTPS on {1} (private key, validity, Server Authentication EKU, DNS name)' -f $Mode, $Fqdn)
        }
        return $certificate
    }
    $store = @(Get-ChildItem -Path 'Cert:\LocalMachine\My' | Where-Object { Test-ServerCertificate -Certificate $_ -Fqdn $Fqdn })
    if ($Mode -eq 'auto') {
        $issued = @($store | Where-Object { $_.Subject -ne $_.Issuer } | Sort-Object -Property NotAfter -Descending)
        if ($issued.Count -eq 0) {
            throw ('no CA-issued certificate for {0} with the Server Authentication EKU in Cert:\LocalMachine\My: enroll one, or run with -WinRmCertificate THUMBPRINT or -WinRmCertificate self-signed' -f $Fqdn)
        }
        return $issued[0]
    }
    # self-signed: the one Confirm-SelfSignedCertificate made sure of.
    $ours = @($store | Where-Object { $_.FriendlyName -eq $SelfSignedFriendlyName } | Sort-Object -Property NotAfter -Descending)
    if ($ours.Count -eq 0) {
        throw ('no usable SELF-SIGNED certificate for {0}' -f $Fqdn)
    }
    return $ours[0]
}

# Creates the SELF-SIGNED certificate unless a usable one from an earlier run is there.
function Confirm-SelfSignedCertificate {
    param([Parameter(Mandatory = $true)][string]$Fqdn)
    $ours = @(Get-ChildItem -Path 'Cert:\LocalMachine\My' | Where-Object { $_.FriendlyName -eq $SelfSignedFriendlyName -and (Test-ServerCertificate -Certificate $_ -Fqdn $Fqdn) })
    if ($ours.Count -gt 0) {
        Write-Step -Status unchanged -Message ('WinRM: SELF-SIGNED certificate {0} for {1} present' -f $ours[0].Thumbprint, $Fqdn)
        return
    }
    $created = New-SelfSignedCertificate -DnsName $Fqdn -CertStoreLocation 'Cert:\LocalMachine\My' -FriendlyName $SelfSignedFriendlyName -KeyExportPolicy NonExportable -NotAfter (Get-Date).AddYears(2)
    Write-Step -Status changed -Message ('WinRM: created a SELF-SIGNED certificate {0} for {1}, valid until {2:yyyy-MM-dd}: the collector must be told to trust exactly this certificate' -f $created.Thumbprint, $Fqdn, $created.NotAfter)
}

function Enable-WinRmHttps {
    param([Parameter(Mandatory = $true)][string]$Mode, [Parameter(Mandatory = $true)][string]$Fqdn)
    $service = Get-Service -Name WinRM
    if ([string]$service.StartType -ne 'Automatic') {
        Set-Service -Name WinRM -StartupType Automatic
        Write-Step -Status changed -Message 'WinRM service: startup type set to Automatic'
    } else {
        Write-Step -Status unchanged -Message 'WinRM service: startup type Automatic'
    }
    if ([string]$service.Status -ne 'Running') {
        Start-Service -Name WinRM
        Write-Step -Status changed -Message 'WinRM service: started'
    } else {
        Write-Step -Status unchanged -Message 'WinRM service: running'
    }

    $resource = 'winrm/config/Listener'
    $https = @(Get-WSManInstance -ResourceURI $resource -Enumerate | Where-Object { (Get-OptionalProperty -Object $_ -Name 'Transport') -eq 'HTTPS' })
    if ($https.Count -eq 0) {
        if ($Mode -eq 'self-signed') { Confirm-SelfSignedCertificate -Fqdn $Fqdn }
        $certificate = Select-WinRmCertificate -Mode $Mode -Fqdn $Fqdn
        New-WSManInstance -ResourceURI $resource -SelectorSet @{ Address = '*'; Transport = 'HTTPS' } -ValueSet @{ Hostname = $Fqdn; CertificateThumbprint = $certificate.Thumbprint } | Out-Null
        Write-Step -Status changed -Message ('WinRM: created the HTTPS listener on *:{0} for {1} with certificate {2}' -f $WinRmHttpsPort, $Fqdn, $certificate.Thumbprint)
    } else {
        $listener = $https[0]
        $address = [string](Get-OptionalProperty -Object $listener -Name 'Address')
        $current = [string](Get-OptionalProperty -Object $listener -Name 'CertificateThumbprint')
        $currentPath = 'Cert:\LocalMachine\My\{0}' -f $current
        $currentUsable = $false
        if ($current -ne '' -and (Test-Path -LiteralPath $currentPath)) {
            $currentUsable = Test-ServerCertificate -Certificate (Get-Item -LiteralPath $currentPath) -Fqdn $Fqdn
        }
        $wanted = $Mode -match '^[0-9A-Fa-f]{40}$'
        if (($wanted -and $current -ne $Mode) -or -not $currentUsable) {
            if ($Mode -eq 'self-signed') { Confirm-SelfSignedCertificate -Fqdn $Fqdn }
            $certificate = Select-WinRmCertificate -Mode $Mode -Fqdn $Fqdn
            Set-WSManInstance -ResourceURI $resource -SelectorSet @{ Address = $address; Transport = 'HTTPS' } -ValueSet @{ Hostname = $Fqdn; CertificateThumbprint = $certificate.Thumbprint } | Out-Null
            Write-Step -Status changed -Message ('WinRM: HTTPS listener {0} now uses certificate {1} (was {2})' -f $address, $certificate.Thumbprint, $current)
        } else {
            Write-Step -Status unchanged -Message ('WinRM: HTTPS listener {0} with certificate {1}' -f $address, $current)
        }
    }

    $rule = Get-NetFirewallRule -Name $FirewallRuleName -ErrorAction SilentlyContinue
    if ($null -eq $rule) {
        New-NetFirewallRule -Name $FirewallRuleName -DisplayName ('Palisade collector: WinRM over HTTPS (TCP {0})' -f $WinRmHttpsPort) -Direction Inbound -Protocol TCP -LocalPort $WinRmHttpsPort -Action Allow -Profile @('Domain', 'Private') | Out-Null
        Write-Step -Status changed -Message ('firewall: rule {0} allows inbound TCP {1} (Domain, Private)' -f $FirewallRuleName, $WinRmHttpsPort)
    } else {
        Write-Step -Status unchanged -Message ('firewall: rule {0} present' -f $FirewallRuleName)
    }
}

# ---------------------------------------------------------------- main
function Invoke-PalisadeNonAdminConfiguration {
    $computerSystem = Get-CimInstance -ClassName Win32_ComputerSystem
    if ($computerSystem.DomainRole -ge 4) {
        throw 'this is a domain controller: it has no local groups; add the account to the domain''s Builtin groups in Active Directory and apply the other steps by hand'
    }
    $fqdn = Get-HostFqdn -ComputerSystem $computerSystem
    $sid = Resolve-AccountSid -Name $AccountName
    Write-Output ('Palisade non-admin configuration of {0} for {1} ({2})' -f $fqdn, $AccountName, $sid)
    Assert-NonAdminAccount -Sid $sid

    Add-MonitoringGroupMembership -Sid $sid
    foreach ($namespace in $WmiNamespaces) {
        Grant-WmiNamespaceAccess -Namespace $namespace -Sid $sid
    }
    Grant-ServiceObjectRead -Name 'scmanager' -Rights $ScmRights -Mask $ScmMask -Sid $sid -Label 'service control manager'
    Grant-ServicesRead -Sid $sid
    Enable-WinRmHttps -Mode $WinRmCertificate -Fqdn $fqdn

    Write-Output ('done: {0} changed, {1} unchanged, {2} skipped' -f $script:ChangedCount, $script:UnchangedCount, $script:SkippedCount)
}

if ($GpoMode) {
    $logDirectory = Join-Path -Path $env:SystemRoot -ChildPath 'Logs\Palisade'
    if (-not (Test-Path -LiteralPath $logDirectory)) {
        New-Item -ItemType Directory -Path $logDirectory | Out-Null
    }
    Start-Transcript -LiteralPath (Join-Path -Path $logDirectory -ChildPath 'collector-nonadmin.log') -Append | Out-Null
}
try {
    Invoke-PalisadeNonAdminConfiguration
} finally {
    if ($GpoMode) {
        Stop-Transcript | Out-Null
    }
}
"##;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn opts(account: &str) -> ScriptOptions {
        ScriptOptions::new(account, false, &[], &[], "auto").unwrap()
    }

    fn script(account: &str) -> String {
        generate(&opts(account))
    }

    /// Index of the first occurrence of `needle`, failing the test if absent.
    fn at(text: &str, needle: &str) -> usize {
        text.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing from the script"))
    }

    #[test]
    fn accepts_the_account_forms_windows_uses() {
        for ok in [
            "svc-palisade",
            "svc_palisade.01",
            "CORP\\svc-palisade",
            "corp.example.com\\svc-palisade",
            "CORP\\gmsa-palisade$",
            "NT SERVICE\\palisade-collector",
            "_svc",
        ] {
            let a = validate_account(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(a.full(), ok);
        }
        let a = validate_account("NT SERVICE\\palisade-collector").unwrap();
        assert_eq!(a.domain.as_deref(), Some("NT SERVICE"));
        assert_eq!(a.name, "palisade-collector");
    }

    #[test]
    fn refuses_injection_attempts() {
        for bad in [
            "",
            "svc'; Remove-Item C:\\ -Recurse; '",
            "svc\"",
            "svc`n",
            "$(Invoke-Expression whoami)",
            "svc$x",
            "svc$$",
            "$svc",
            "svc)(A;;GA;;;WD)",
            "svc;(A;;GA;;;WD)",
            "svc\nWrite-Host pwned",
            "svc\r",
            "svc\0",
            "svc palisade",
            " svc",
            "svc\t",
            "svc\u{2019}; whoami; \u{2018}",
            "sv\u{e9}c",
            "CORP\\svc\\x",
            "\\svc",
            "CORP\\",
            "svc@corp.example.com",
            ".svc",
            "svc.",
            "-svc",
            "svc#",
            "svc|whoami",
            "svc&whoami",
            "svc>x",
            "svc{x}",
            "svc,x",
            "svc%x",
            "svc*",
            "svc/x",
            "NT  SERVICE\\x",
            "NT SERVICE \\x",
            "C'RP\\svc",
            "CORP$\\svc",
            &"a".repeat(65),
        ] {
            let e = validate_account(bad);
            assert!(e.is_err(), "accepted {bad:?}");
            assert!(
                ScriptOptions::new(bad, false, &[], &[], "auto").is_err(),
                "{bad:?}"
            );
        }
        // The error message never echoes a control character.
        let e = validate_account("svc\nWrite-Host").unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn refuses_builtin_and_admin_principals() {
        for bad in [
            "Administrator",
            "CORP\\Administrators",
            "SYSTEM",
            "LocalSystem",
            "NT AUTHORITY\\SYSTEM",
            "NT AUTHORITY\\NETWORK SERVICE",
            "nt authority\\LocalService",
            "BUILTIN\\Users",
            "Everyone",
            "Guest",
            "CORP\\krbtgt",
        ] {
            assert!(validate_account(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn validates_other_flags() {
        let ns = vec![
            "root\\virtualization\\v2".to_string(),
            "ROOT\\CIMV2".to_string(),
        ];
        let o = ScriptOptions::new("svc", false, &ns, &[], "auto").unwrap();
        assert_eq!(
            o.wmi_namespaces,
            ["root\\cimv2", "root\\virtualization\\v2"]
        );
        for bad in ["root\\cimv2'", "cimv2", "root\\", "root\\a b", "root\\$x"] {
            assert!(validate_wmi_namespace(bad).is_err(), "{bad}");
        }
        let svc = vec!["MSSQL$SQLEXPRESS".to_string(), "W32Time".to_string()];
        let o = ScriptOptions::new("svc", false, &[], &svc, "auto").unwrap();
        assert!(generate(&o).contains("$ServiceNames = @('MSSQL$SQLEXPRESS', 'W32Time')"));
        for bad in ["scmanager", "a'b", "a b", "a;b", ""] {
            assert!(validate_service(bad).is_err(), "{bad}");
        }
        let thumb = "0123456789abcdef0123456789ABCDEF01234567";
        assert_eq!(
            validate_winrm_certificate(thumb).unwrap(),
            thumb.to_ascii_uppercase()
        );
        for bad in [
            "AUTO",
            "selfsigned",
            "0123",
            "0123456789abcdef0123456789ABCDEF0123456g",
        ] {
            assert!(validate_winrm_certificate(bad).is_err(), "{bad}");
        }
        assert!(ScriptOptions::new("svc", true, &[], &[], "auto").is_err());
        assert!(ScriptOptions::new("CORP\\svc", true, &[], &[], "auto").is_ok());
    }

    #[test]
    fn quoting_doubles_every_powershell_single_quote() {
        assert_eq!(ps_literal("a'b"), "'a''b'");
        assert_eq!(ps_literal("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(ps_literal("NT SERVICE\\x"), "'NT SERVICE\\x'");
    }

    #[test]
    fn every_mandated_element_is_present() {
        let s = script("CORP\\svc-palisade");
        for needle in [
            // Strictness and the account.
            "Set-StrictMode -Version Latest",
            "$ErrorActionPreference = 'Stop'",
            "#Requires -RunAsAdministrator",
            // Windows PowerShell: the WMI cmdlets are not in PowerShell 7.
            "#Requires -PSEdition Desktop",
            "$AccountName = 'CORP\\svc-palisade'",
            "Translate([System.Security.Principal.SecurityIdentifier])",
            // 1. The five groups, by well-known SID.
            "'S-1-5-32-558' = 'Performance Monitor Users'",
            "'S-1-5-32-559' = 'Performance Log Users'",
            "'S-1-5-32-573' = 'Event Log Readers'",
            "'S-1-5-32-562' = 'Distributed COM Users'",
            "'S-1-5-32-580' = 'Remote Management Users'",
            "Add-LocalGroupMember -SID $groupSid -Member $Sid",
            // 2. WMI namespace security.
            "$WmiNamespaces = @('root\\cimv2')",
            "__SystemSecurity=@",
            "-Name GetSecurityDescriptor",
            "-Name SetSecurityDescriptor",
            "$WbemEnable = 0x1",
            "$WbemRemoteAccess = 0x20",
            "$ContainerInheritAce = 0x2",
            "Win32_ACE",
            "Win32_Trustee",
            // 3. SCM.
            "$ScmRights = 'CCLCRPRC'",
            "& sc.exe sdshow $Name",
            "& sc.exe sdset $Name $new",
            "Grant-ServiceObjectRead -Name 'scmanager'",
            "'(A;;{0};;;{1})' -f $Rights, $Sid",
            // 4. Every service, read only.
            "$ServiceRights = 'CCLCSWLORC'",
            "Get-CimInstance -ClassName Win32_Service",
            // 5. WinRM over HTTPS.
            "[string]$WinRmCertificate = 'auto'",
            "Set-Service -Name WinRM -StartupType Automatic",
            "New-WSManInstance -ResourceURI $resource -SelectorSet @{ Address = '*'; Transport = 'HTTPS' }",
            "New-SelfSignedCertificate",
            "SELF-SIGNED",
            "$WinRmHttpsPort = 5986",
            "New-NetFirewallRule",
            // Output of what changed.
            "[changed]",
            "Write-Step -Status changed",
            "done: {0} changed, {1} unchanged, {2} skipped",
        ] {
            at(&s, needle);
        }
        // Never more than read on services.
        for right in ["DC", "RP;", "WP", "DT", "CR", "SD", "WD", "WO", "GA", "GW"] {
            assert!(!s.contains(&format!("$ServiceRights = 'CCLCSWLORC{right}")));
        }
        assert!(!s.contains("(A;;GA;"));
    }

    #[test]
    fn every_change_is_guarded_by_a_check() {
        let s = script("svc-palisade");
        // Groups: an existing membership is caught and reported, not an error.
        assert!(
            at(&s, "Add-LocalGroupMember")
                < at(
                    &s,
                    "catch [Microsoft.PowerShell.Commands.MemberExistsException]"
                )
        );
        // WMI: the ACE is looked for before SetSecurityDescriptor.
        let wmi = at(&s, "function Grant-WmiNamespaceAccess");
        let check = wmi + at(&s[wmi..], "if (Test-WmiAceGranted");
        let set = wmi + at(&s[wmi..], "-Name SetSecurityDescriptor");
        assert!(check < set);
        // SDDL: Test-SddlGrants before sc.exe sdset.
        let svc = at(&s, "function Grant-ServiceObjectRead");
        let check = svc + at(&s[svc..], "if (Test-SddlGrants -Sddl $old");
        let set = svc + at(&s[svc..], "& sc.exe sdset");
        assert!(check < set);
        // WinRM: the service state, the listeners and the firewall rule are read first.
        let winrm = at(&s, "function Enable-WinRmHttps");
        let w = &s[winrm..];
        assert!(at(w, "if ([string]$service.StartType -ne 'Automatic')") < at(w, "Set-Service"));
        assert!(at(w, "if ([string]$service.Status -ne 'Running')") < at(w, "Start-Service"));
        assert!(
            at(w, "Get-WSManInstance -ResourceURI $resource -Enumerate")
                < at(w, "New-WSManInstance")
        );
        assert!(at(w, "if ($https.Count -eq 0)") < at(w, "New-WSManInstance"));
        assert!(
            at(w, "Get-NetFirewallRule -Name $FirewallRuleName") < at(w, "New-NetFirewallRule")
        );
        // Self-signed certificate: reused when present.
        let ss = at(&s, "function Confirm-SelfSignedCertificate");
        assert!(at(&s[ss..], "if ($ours.Count -gt 0)") < at(&s[ss..], "New-SelfSignedCertificate"));
        // Each of these appears in exactly one place, behind its check.
        for once in [
            "Add-LocalGroupMember",
            "-Name SetSecurityDescriptor",
            "& sc.exe sdset",
            "New-WSManInstance",
            "Set-WSManInstance",
            "New-NetFirewallRule",
            "New-SelfSignedCertificate",
        ] {
            assert_eq!(s.matches(once).count(), 1, "{once}");
        }
    }

    #[test]
    fn output_is_deterministic_ascii_and_fully_substituted() {
        let o = ScriptOptions::new(
            "CORP\\gmsa-palisade$",
            true,
            &["root\\virtualization\\v2".to_string()],
            &["W32Time".to_string()],
            "self-signed",
        )
        .unwrap();
        let a = generate(&o);
        assert_eq!(a, generate(&o.clone()));
        assert!(a.is_ascii());
        assert!(!a.contains("@@"), "placeholder left");
        assert!(!a.contains('\r'));
        assert!(a.contains("$GpoMode = $true"));
        assert!(a.contains("Start-Transcript"));
        assert!(a.contains("GPO startup script"));
        assert!(a.contains("[string]$WinRmCertificate = 'self-signed'"));
        assert!(a.contains("$WmiNamespaces = @('root\\cimv2', 'root\\virtualization\\v2')"));
        assert!(a.contains(
            "--account 'CORP\\gmsa-palisade$' --gpo --wmi-namespace 'root\\virtualization\\v2' \
             --service 'W32Time' --winrm-certificate self-signed"
        ));
        let p = script("svc-palisade");
        assert!(p.contains("$GpoMode = $false"));
        assert!(p.contains("Per-host variant"));
        assert!(p.contains("$ServiceNames = @()"));
        // The account is written once as a value, inside single quotes.
        assert_eq!(
            p.matches("svc-palisade").count(),
            3,
            "value, header comment, command"
        );
        assert_eq!(p.matches("$AccountName = 'svc-palisade'").count(), 1);
    }

    /// PowerShell reads `"$name:"` as a scope-qualified variable: only real scopes and
    /// drives may follow `$` with a colon.
    #[test]
    fn no_accidental_scope_qualified_variables() {
        let s = script("svc");
        let b = s.as_bytes();
        for (i, _) in s.match_indices('$') {
            let name: String = s[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if b.get(i + 1 + name.len()) == Some(&b':') {
                assert!(
                    ["env", "script"].contains(&name.as_str()),
                    "`${name}:` at byte {i}"
                );
            }
        }
    }
}
