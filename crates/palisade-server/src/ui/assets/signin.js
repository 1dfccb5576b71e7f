/* Passkeys on the sign-in and enrolment pages (WebAuthn needs JavaScript). The buttons are
   bound here, not with inline handlers, so the pages run under a CSP without
   'unsafe-inline'. The ceremonies are looked up on `window` at click time. */
function b64u(buf){return btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,'');}
function unb64u(s){s=s.replace(/-/g,'+').replace(/_/g,'/');while(s.length%4)s+='=';return Uint8Array.from(atob(s),c=>c.charCodeAt(0));}
async function palisadePasskey(){
  const csrf=document.querySelector('#passkey-form input[name=csrf]').value;
  const r=await fetch('/api/auth/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json();const o=j.publicKey||j;
  o.challenge=unb64u(o.challenge);(o.allowCredentials||[]).forEach(c=>c.id=unb64u(c.id));
  const c=await navigator.credentials.get({publicKey:o});
  const out={id:c.id,rawId:b64u(c.rawId),type:c.type,response:{clientDataJSON:b64u(c.response.clientDataJSON),authenticatorData:b64u(c.response.authenticatorData),signature:b64u(c.response.signature),userHandle:c.response.userHandle?b64u(c.response.userHandle):null}};
  document.getElementById('passkey-credential').value=JSON.stringify(out);
  document.getElementById('passkey-form').submit();
}
async function palisadeRegister(){
  const csrf=document.querySelector('#register-form input[name=csrf]').value;
  const r=await fetch('/api/me/factors/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json();const o=j.publicKey||j;
  o.challenge=unb64u(o.challenge);o.user.id=unb64u(o.user.id);(o.excludeCredentials||[]).forEach(c=>c.id=unb64u(c.id));
  const c=await navigator.credentials.create({publicKey:o});
  const out={id:c.id,rawId:b64u(c.rawId),type:c.type,response:{clientDataJSON:b64u(c.response.clientDataJSON),attestationObject:b64u(c.response.attestationObject)}};
  document.getElementById('register-credential').value=JSON.stringify(out);
  document.getElementById('register-form').submit();
}
(function(){
  function bind(){
    var signin=document.getElementById('passkey');
    if(signin){signin.addEventListener('click',function(){window.palisadePasskey();});}
    var register=document.getElementById('enrol-passkey');
    if(register){register.addEventListener('click',function(){window.palisadeRegister();});}
  }
  if(document.readyState!=='loading'){bind();}else{document.addEventListener('DOMContentLoaded',bind);}
})();
