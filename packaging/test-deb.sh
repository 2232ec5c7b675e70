#!/usr/bin/env bash
# Builds the .deb and checks it the way an operator meets it: lintian, install, the binary,
# the account, the conffile surviving an upgrade, purge leaving nothing, and the unit's
# verification and hardening score. Needs root (CI runs as root), no running systemd.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
pass() { echo "test-deb: ok: $*"; }

dpkg --purge pickaxe >/dev/null 2>&1 || true

cargo deb --locked --output target/debian/pickaxe_0.1.0.deb >/dev/null
deb=target/debian/pickaxe_0.1.0.deb
# The same build as a newer version, to test an upgrade.
cargo deb --no-build --deb-version 0.1.1-1 --output target/debian/pickaxe_0.1.1.deb >/dev/null
newer=target/debian/pickaxe_0.1.1.deb

lintian --fail-on error --suppress-tags no-manual-page "$deb" || fail "lintian reports errors"
pass "lintian: no errors"

info=$(dpkg-deb --info "$deb")
grep -q 'Depends:.*ca-certificates' <<<"$info" || fail "Depends lacks ca-certificates"
dpkg -i "$deb" </dev/null >/dev/null
[ -x /usr/bin/pickaxe ] || fail "/usr/bin/pickaxe missing"
version=$(/usr/bin/pickaxe --version)
[[ "$version" == "pickaxe 0.1.0" ]] || fail "pickaxe --version: $version"
pass "installed: $(/usr/bin/pickaxe --version)"
getent passwd pickaxe >/dev/null || fail "no pickaxe user"
[ "$(stat -c '%U:%G %a' /var/lib/pickaxe)" = "pickaxe:pickaxe 750" ] || fail "state dir: $(stat -c '%U:%G %a' /var/lib/pickaxe)"
[ "$(stat -c '%U:%G %a' /etc/pickaxe/pickaxe.toml)" = "root:pickaxe 640" ] || fail "config mode: $(stat -c '%U:%G %a' /etc/pickaxe/pickaxe.toml)"
grep -qx /etc/pickaxe/pickaxe.toml /var/lib/dpkg/info/pickaxe.conffiles || fail "config is not a conffile"
[ -L /etc/systemd/system/multi-user.target.wants/pickaxe.service ] || fail "service not enabled"
pass "user, modes, conffile, enabled unit"

# The default config has no key: `pickaxe run` refuses it with the config exit code, so the
# enabled unit does not crash-loop before the operator configures it.
set +e
/usr/bin/pickaxe run --config /etc/pickaxe/pickaxe.toml 2>/tmp/pickaxe-run.err
code=$?
set -e
[ "$code" = 78 ] || fail "unconfigured run exited $code"
grep -q 'foreman.api_key' /tmp/pickaxe-run.err || fail "unconfigured run error: $(cat /tmp/pickaxe-run.err)"
pass "unconfigured: exit 78 naming foreman.api_key"

systemd-analyze verify --man=no systemd/pickaxe.service || fail "systemd-analyze verify"
score=$(systemd-analyze security --offline=yes systemd/pickaxe.service 2>/dev/null | sed -n 's/.*Overall exposure level for pickaxe.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no security score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score > 2.0"
pass "unit verifies, exposure $score"

# Case C-33: an edited config and the state survive an upgrade and a reinstall.
sed -i 's/^api_key = ""/api_key = "APIKEY-PLACEHOLDER"/; s/^client_id = ""/client_id = "42"/' /etc/pickaxe/pickaxe.toml
before=$(sha256sum /etc/pickaxe/pickaxe.toml)
echo state > /var/lib/pickaxe/keep-me
dpkg -i "$newer" </dev/null >/dev/null
[ "$(dpkg-query -W -f='${Version}' pickaxe)" = "0.1.1-1" ] || fail "upgrade did not happen"
[ "$(sha256sum /etc/pickaxe/pickaxe.toml)" = "$before" ] || fail "upgrade changed the edited config"
[ -f /var/lib/pickaxe/keep-me ] || fail "upgrade lost the state"
dpkg -i "$newer" </dev/null >/dev/null
[ "$(sha256sum /etc/pickaxe/pickaxe.toml)" = "$before" ] || fail "reinstall changed the edited config"
pass "edited config and state survive upgrade and reinstall"

dpkg --remove pickaxe >/dev/null
[ -f /var/lib/pickaxe/keep-me ] || fail "remove deleted the state"
dpkg --purge pickaxe >/dev/null
[ ! -e /var/lib/pickaxe ] || fail "purge left /var/lib/pickaxe"
[ ! -e /etc/pickaxe ] || fail "purge left /etc/pickaxe"
! getent passwd pickaxe >/dev/null || fail "purge left the pickaxe user"
pass "purge removes state, config and user"
