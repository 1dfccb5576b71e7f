//! Safe reads of the current process's Windows token, for `palisade-collector`'s privilege
//! report (`crates/palisade-collector/src/privilege_windows.rs` judges what is read here).
//!
//! - [`CurrentToken::elevated`] reads `GetTokenInformation(TokenElevation)`.
//! - [`CurrentToken::elevation_type`] reads `GetTokenInformation(TokenElevationType)`
//!   (1 default, 2 full, 3 limited).
//! - [`CurrentToken::user`] reads `TokenUser`, as `DOMAIN\name` (`LookupAccountSidW`) and
//!   SID string (`ConvertSidToStringSidW`).
//! - [`administrators_member`] calls `CheckTokenMembership(NULL, BUILTIN\Administrators)`,
//!   true only when the group is present **and enabled** (a deny-only group of a
//!   UAC-filtered token does not count).
//!
//! The workspace forbids unsafe code; this crate holds the Win32 calls so that the collector
//! keeps that rule. On other platforms it is empty. It has **not been compiled for a Windows
//! target** (none is installed where it was written): it was type-checked against
//! windows-sys 0.61.2 only (see `docs/collector.md`).
#![cfg(windows)]

use std::ffi::c_void;
use std::io;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    CheckTokenMembership, CreateWellKnownSid, GetTokenInformation, LookupAccountSidW,
    TokenElevation, TokenElevationType, TokenUser, WinBuiltinAdministratorsSid, PSID,
    SECURITY_MAX_SID_SIZE, SID_NAME_USE, TOKEN_ELEVATION, TOKEN_INFORMATION_CLASS, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// The current process's primary token, opened for `TOKEN_QUERY`; closed on drop.
#[derive(Debug)]
pub struct CurrentToken(HANDLE);

impl Drop for CurrentToken {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenProcessToken and is closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

impl CurrentToken {
    /// `OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY)`.
    pub fn open() -> io::Result<CurrentToken> {
        let mut h: HANDLE = std::ptr::null_mut();
        // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; `h` is a
        // valid out pointer.
        let ok = unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut h) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(CurrentToken(h))
    }

    /// `GetTokenInformation` into a zeroed, 8-byte aligned buffer of at least `len` bytes.
    fn info(&self, class: TOKEN_INFORMATION_CLASS, len: u32) -> io::Result<Vec<u64>> {
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        let mut ret = 0u32;
        // SAFETY: the buffer holds at least `len` bytes and outlives the call.
        let ok = unsafe {
            GetTokenInformation(
                self.0,
                class,
                buf.as_mut_ptr().cast::<c_void>(),
                len,
                &raw mut ret,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(buf)
    }

    /// The size `GetTokenInformation` reports for `class` (the sizing call fails with
    /// ERROR_INSUFFICIENT_BUFFER and fills in the length); 0 if it reports none.
    fn info_len(&self, class: TOKEN_INFORMATION_CLASS) -> u32 {
        let mut ret = 0u32;
        // SAFETY: a null buffer of length 0 is the documented way to ask for the size.
        unsafe { GetTokenInformation(self.0, class, std::ptr::null_mut(), 0, &raw mut ret) };
        ret
    }

    /// `TokenIsElevated`.
    pub fn elevated(&self) -> io::Result<bool> {
        let len = std::mem::size_of::<TOKEN_ELEVATION>() as u32;
        let buf = self.info(TokenElevation, len)?;
        // SAFETY: the buffer is 8-byte aligned, zero-initialised and at least as large as
        // TOKEN_ELEVATION (one u32).
        let e = unsafe { *buf.as_ptr().cast::<TOKEN_ELEVATION>() };
        Ok(e.TokenIsElevated != 0)
    }

    /// The raw `TOKEN_ELEVATION_TYPE` (1 default, 2 full, 3 limited).
    pub fn elevation_type(&self) -> io::Result<i32> {
        let buf = self.info(TokenElevationType, std::mem::size_of::<i32>() as u32)?;
        // SAFETY: TOKEN_ELEVATION_TYPE is an i32 at the start of the aligned buffer.
        Ok(unsafe { *buf.as_ptr().cast::<i32>() })
    }

    /// (`DOMAIN\name`, or the SID string when the SID has no name; SID string).
    pub fn user(&self) -> io::Result<(String, String)> {
        let len = self.info_len(TokenUser);
        if len == 0 {
            return Err(io::Error::last_os_error());
        }
        let buf = self.info(TokenUser, len)?;
        // SAFETY: GetTokenInformation(TokenUser) wrote a TOKEN_USER at the start of the
        // aligned buffer; its Sid points into `buf`, which lives to the end of this function.
        let sid: PSID = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        let sid_string = sid_to_string(sid)?;
        let name = account_name(sid).unwrap_or_else(|_| sid_string.clone());
        Ok((name, sid_string))
    }
}

fn sid_to_string(sid: PSID) -> io::Result<String> {
    let mut p: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is a valid SID; on success `p` is a LocalAlloc'ed, NUL-terminated wide
    // string, freed below.
    let ok = unsafe { ConvertSidToStringSidW(sid, &raw mut p) };
    if ok == 0 || p.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut n = 0usize;
    // SAFETY: `p` is NUL-terminated, so every read up to and including the NUL is in bounds.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: `p` points to `n` initialised u16 before the NUL.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, n) });
    // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc, freed once.
    unsafe { LocalFree(p.cast::<c_void>()) };
    Ok(s)
}

fn account_name(sid: PSID) -> io::Result<String> {
    let mut name = [0u16; 256];
    let mut domain = [0u16; 256];
    let mut name_len = name.len() as u32;
    let mut domain_len = domain.len() as u32;
    let mut use_: SID_NAME_USE = 0;
    // SAFETY: both buffers are as long as the lengths passed; on success the lengths are
    // the characters written, without the NUL.
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid,
            name.as_mut_ptr(),
            &raw mut name_len,
            domain.as_mut_ptr(),
            &raw mut domain_len,
            &raw mut use_,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let name = String::from_utf16_lossy(&name[..(name_len as usize).min(name.len())]);
    let domain = String::from_utf16_lossy(&domain[..(domain_len as usize).min(domain.len())]);
    Ok(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}

/// `CheckTokenMembership(NULL, BUILTIN\Administrators)`: true only when the group is present
/// and enabled in the calling thread's token (an impersonation copy of the process's primary
/// token when the thread is not impersonating).
pub fn administrators_member() -> io::Result<bool> {
    // SECURITY_MAX_SID_SIZE bytes, 4-byte aligned as a SID requires.
    let mut sid = [0u32; (SECURITY_MAX_SID_SIZE as usize).div_ceil(4)];
    let mut size = SECURITY_MAX_SID_SIZE;
    // SAFETY: `sid` holds SECURITY_MAX_SID_SIZE bytes; a BUILTIN SID takes no domain SID.
    let ok = unsafe {
        CreateWellKnownSid(
            WinBuiltinAdministratorsSid,
            std::ptr::null_mut(),
            sid.as_mut_ptr().cast::<c_void>(),
            &raw mut size,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut member = 0i32;
    // SAFETY: a null token handle is documented (see above); `sid` is a valid SID for the
    // duration of the call and `member` a valid out pointer.
    let ok = unsafe {
        CheckTokenMembership(
            std::ptr::null_mut(),
            sid.as_mut_ptr().cast::<c_void>(),
            &raw mut member,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(member != 0)
}
