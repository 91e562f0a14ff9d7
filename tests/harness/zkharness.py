# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real Apache ZooKeeper servers for tests, benchmarks and the demo.

No mocks: every cluster is made of real ``QuorumPeerMain`` JVMs started from
Debian's ``zookeeper`` package (3.8), from the 3.4.13 jar of Debian
bullseye's ``libzookeeper-java`` (fetched with apt into ``.cache/zk34``), or
from the 3.9.3 jars of Debian trixie's (``.cache/zk39``, run with this
machine's 3.8 dependency jars).

A ``ZkCluster`` is one standalone server or an ensemble on free loopback
ports, optionally with digest authentication (a superDigest identity for the
migrator), TLS (``secureClientPort`` with keystores generated on the fly),
extended types (TTL nodes) and a short container check interval. Members can
be stopped, killed with SIGKILL, frozen with SIGSTOP and restarted with their
data. Every process started is tracked and killed at interpreter exit, so a
failed or interrupted run leaves nothing behind.
"""

import atexit
import base64
import glob
import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.environ.get('ZK_HARNESS_CACHE', os.path.join(REPO_ROOT, '.cache'))
JAVA = os.environ.get('ZK_HARNESS_JAVA', shutil.which('java') or '/usr/bin/java')
SHARE_JAVA = '/usr/share/java'
ZK34_PACKAGE = 'libzookeeper-java=3.4.13-6+deb11u1'
ZK34_SUITE = 'bullseye'
# ZooKeeper 3.9.3: Debian trixie's jars, fetched the same way, run with this machine's (bookworm's) dependency jars.
ZK39_PACKAGE = 'libzookeeper-java=3.9.3-1+deb13u1'
ZK39_SUITE = 'trixie'

# Jars next to the server jar: log4j binding (without it the server logs
# nothing) and the Netty pieces the manifest of Debian's jar does not list.
_LOG_JARS = ['slf4j-api.jar', 'slf4j-log4j12.jar', 'log4j-1.2.jar']
_NETTY_JARS = ['netty-codec.jar', 'netty-resolver.jar', 'netty-transport-native-unix-common.jar']
# The AdminServer (admin.enableServer=true, 3.5+): Jetty and Jackson, dependencies of Debian's libzookeeper-java.
_ADMIN_JARS = ['jetty9-server.jar', 'jetty9-servlet.jar', 'jetty9-http.jar', 'jetty9-io.jar', 'jetty9-util.jar',
               'jetty9-security.jar', 'servlet-api.jar', 'jackson-databind.jar', 'jackson-core.jar', 'jackson-annotations.jar']

SUPER_USER = 'super'
SUPER_PASSWORD = 'superpw'
KEYSTORE_PASSWORD = 'harness-keystore-pw'

# Ports handed out in this process: the same free port is never given twice.
_ports_lock = threading.Lock()
_ports_given = set()
# Every process started, killed at exit whatever happens to the test run.
_live_processes = set()


class HarnessError(Exception):
    """The harness could not set up or drive a server."""


def _kill_all_at_exit():
    for proc in list(_live_processes):
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_all_at_exit)


def port_is_free(port, host='127.0.0.1'):
    """True when nothing listens on ``host:port`` and it can be bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the JVM does: a port whose old connections linger in TIME_WAIT is free.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def free_port(host='127.0.0.1', low=24000, high=32000):
    """A free TCP port below the kernel's ephemeral range (outgoing
    connections cannot grab it between the check and the server's bind)."""
    for _attempt in range(2000):
        port = random.randint(low, high)
        with _ports_lock:
            if port in _ports_given:
                continue
            if port_is_free(port, host):
                _ports_given.add(port)
                return port
    raise HarnessError('no free port found in %d-%d on %s' % (low, high, host))


def four_letter_word(host, port, word='srvr', timeout=2.0):
    """Send a four-letter word to a server and return its answer ('' on failure)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(word.encode('ascii'))
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b''.join(chunks).decode('utf-8', 'replace')
    except OSError:
        return ''


def super_digest(user=SUPER_USER, password=SUPER_PASSWORD):
    """The ``user:base64(sha1(user:password))`` form the server's superDigest takes."""
    digest = hashlib.sha1(('%s:%s' % (user, password)).encode('utf-8')).digest()
    return '%s:%s' % (user, base64.b64encode(digest).decode('ascii'))


def _configured_debian_mirror():
    """The Debian mirror this machine's apt is configured with (no host is hard-coded)."""
    candidates = []
    for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*')):
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        if path.endswith('.sources'):
            for stanza in text.split('\n\n'):
                fields = {}
                for line in stanza.splitlines():
                    if ':' in line and not line.lstrip().startswith('#'):
                        key, _sep, value = line.partition(':')
                        fields[key.strip().lower()] = value.strip()
                suites = fields.get('suites', '').split()
                if any(s in ('bookworm', 'bullseye', 'trixie') for s in suites):
                    candidates.extend(fields.get('uris', '').split())
        else:
            for line in text.splitlines():
                words = line.split()
                if len(words) >= 3 and words[0] == 'deb' and words[2] in ('bookworm', 'bullseye', 'trixie'):
                    candidates.append(words[1] if not words[1].startswith('[') else words[2])
    for uri in candidates:
        if 'security' not in uri:
            return uri.rstrip('/')
    raise HarnessError('no Debian mirror configured in /etc/apt: cannot fetch ZooKeeper 3.4.13')


def _fetch_debian_package(cache_name, suite, package, what):
    """Extract ``package`` of Debian ``suite`` under ``.cache/<cache_name>/root`` (once); returns that root.

    Uses a private apt configuration naming the suite on the machine's
    configured mirror, so the system's apt state is not touched.
    """
    root = os.path.join(CACHE_DIR, cache_name)
    extracted = os.path.join(root, 'root')
    if os.path.isdir(os.path.join(extracted, 'usr', 'share', 'java')):
        return extracted
    os.makedirs(os.path.join(root, 'lists', 'partial'), exist_ok=True)
    os.makedirs(os.path.join(root, 'download'), exist_ok=True)
    sources = os.path.join(root, 'sources.list')
    with open(sources, 'w') as handle:
        handle.write('deb %s %s main\n' % (_configured_debian_mirror(), suite))
    apt_opts = [
        '-o', 'Dir::Etc::SourceList=%s' % sources,
        '-o', 'Dir::Etc::SourceParts=/dev/null',
        '-o', 'Dir::State::Lists=%s' % os.path.join(root, 'lists'),
        '-o', 'Dir::State::status=/dev/null',
        '-o', 'Dir::Cache=%s' % os.path.join(root, 'cache'),
        '-o', 'APT::Sandbox::User=root',
        '-o', 'Debug::NoLocking=1',
    ]
    for cmd in (['apt-get'] + apt_opts + ['update', '-qq'],
                ['apt-get'] + apt_opts + ['download', '-qq', package]):
        result = subprocess.run(cmd, cwd=os.path.join(root, 'download'), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if result.returncode != 0:
            raise HarnessError('fetching %s failed (%s): %s' % (what, ' '.join(cmd[:1] + cmd[-2:]), result.stdout[-2000:]))
    name = package.split('=', 1)[0]
    debs = glob.glob(os.path.join(root, 'download', '%s_*.deb' % name))
    if not debs:
        raise HarnessError('apt-get download produced no %s package' % name)
    subprocess.run(['dpkg', '-x', debs[0], extracted], check=True)
    return extracted


def zk34_jar():
    """Path of the ZooKeeper 3.4.13 server jar (Debian bullseye's libzookeeper-java), fetched once into the cache."""
    jar = os.path.join(_fetch_debian_package('zk34', ZK34_SUITE, ZK34_PACKAGE, 'ZooKeeper 3.4.13'), 'usr', 'share', 'java',
                       'zookeeper-3.4.13.jar')
    if not os.path.exists(jar):
        raise HarnessError('ZooKeeper 3.4.13 jar not found after extraction: %s' % jar)
    return jar


def zk39_jars():
    """[jute, server] jars of ZooKeeper 3.9.3 (Debian trixie's libzookeeper-java), fetched once into the cache.

    The jute jar comes first: the server jar's manifest names the system's
    (3.8) jute jar, which must not shadow 3.9's.
    """
    java = os.path.join(_fetch_debian_package('zk39', ZK39_SUITE, ZK39_PACKAGE, 'ZooKeeper 3.9.3'), 'usr', 'share', 'java')
    jars = [os.path.join(java, 'zookeeper-jute-3.9.3.jar'), os.path.join(java, 'zookeeper-3.9.3.jar')]
    missing = [jar for jar in jars if not os.path.exists(jar)]
    if missing:
        raise HarnessError('ZooKeeper 3.9.3 jars not found after extraction: %s' % missing)
    return jars


def _run_tool(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, check=False)
    if result.returncode != 0:
        raise HarnessError('%s failed: %s' % (cmd[0], result.stdout[-2000:]))


def _is_ip_address(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_tls_material(directory, host='127.0.0.1', client_host=None):
    """Create a CA, a server and a client certificate (PEM) plus PKCS12 stores for the server.

    The server certificate is issued for ``host``: its CN, and a
    subjectAltName of type IP for an address (clients checking host names
    match an IP address only against IP SANs) or DNS for a name, plus
    ``DNS:localhost``. A ``host`` other than the address clients connect to
    makes a certificate that fails host-name checks. The client certificate
    names ``client_host`` (default: ``host`` when it is an address, else
    127.0.0.1), the address clients connect from, for servers that check it.

    Returns a dict of paths: ca_file, server_keystore, truststore, cert_file,
    key_file (client), and the keystore password.
    """
    os.makedirs(directory, exist_ok=True)
    paths = {name: os.path.join(directory, name) for name in (
        'ca.key', 'ca.pem', 'server.key', 'server.csr', 'server.pem', 'server.p12',
        'client.key', 'client.csr', 'client.pem', 'trust.p12', 'server-san.cnf', 'client-san.cnf')}
    if client_host is None:
        client_host = host if _is_ip_address(host) else '127.0.0.1'
    for role, name in (('server', host), ('client', client_host)):
        with open(paths['%s-san.cnf' % role], 'w') as handle:
            handle.write('subjectAltName=%s:%s,DNS:localhost\n' % ('IP' if _is_ip_address(name) else 'DNS', name))

    def run(*cmd):
        _run_tool(list(cmd), directory)

    run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=zk-harness-ca',
        '-keyout', paths['ca.key'], '-out', paths['ca.pem'])
    for role in ('server', 'client'):
        run('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=%s' % (host if role == 'server' else 'zk-harness-client'),
            '-keyout', paths['%s.key' % role], '-out', paths['%s.csr' % role])
        run('openssl', 'x509', '-req', '-in', paths['%s.csr' % role], '-CA', paths['ca.pem'], '-CAkey', paths['ca.key'],
            '-CAcreateserial', '-days', '2', '-extfile', paths['%s-san.cnf' % role], '-out', paths['%s.pem' % role])
    run('openssl', 'pkcs12', '-export', '-in', paths['server.pem'], '-inkey', paths['server.key'], '-name', 'server',
        '-out', paths['server.p12'], '-passout', 'pass:%s' % KEYSTORE_PASSWORD)
    run('keytool', '-importcert', '-noprompt', '-alias', 'ca', '-file', paths['ca.pem'], '-keystore', paths['trust.p12'],
        '-storetype', 'PKCS12', '-storepass', KEYSTORE_PASSWORD)
    return {
        'ca_file': paths['ca.pem'],
        'cert_file': paths['client.pem'],
        'key_file': paths['client.key'],
        'server_keystore': paths['server.p12'],
        'truststore': paths['trust.p12'],
        'password': KEYSTORE_PASSWORD,
        'ca_key': paths['ca.key'],
    }


class ZkNode(object):
    """One ZooKeeper server process with its own ports, config, data and logs."""

    def __init__(self, cluster, myid, directory):
        self.cluster = cluster
        self.myid = myid
        self.directory = directory
        bind = cluster.bind
        self.client_port = free_port(bind)
        self.quorum_port = free_port(bind) if cluster.size > 1 else None
        self.election_port = free_port(bind) if cluster.size > 1 else None
        self.secure_port = free_port(bind) if cluster.tls else None
        self.data_dir = os.path.join(directory, 'data')
        self.config_file = os.path.join(directory, 'zoo.cfg')
        self.log_file = os.path.join(directory, 'server.log')
        self.stdout_file = os.path.join(directory, 'stdout.log')
        self.process = None

    @property
    def address(self):
        return '%s:%d' % (self.cluster.bind, self.client_port)

    @property
    def secure_address(self):
        return '%s:%d' % (self.cluster.bind, self.secure_port) if self.secure_port else None

    def _write_config(self):
        cluster = self.cluster
        os.makedirs(self.data_dir, exist_ok=True)
        with open(os.path.join(self.data_dir, 'myid'), 'w') as handle:
            handle.write('%d\n' % self.myid)
        lines = [
            'tickTime=%d' % cluster.tick_time,
            'initLimit=10',
            'syncLimit=5',
            'dataDir=%s' % self.data_dir,
            'clientPort=%d' % self.client_port,
            'clientPortAddress=%s' % cluster.bind,
            'minSessionTimeout=%d' % cluster.min_session_timeout,
            'maxSessionTimeout=%d' % cluster.max_session_timeout,
            # 4 MB transaction-log preallocation instead of 64 MB: many servers, little disk.
            'preAllocSize=4096',
            'maxClientCnxns=0',
            '4lw.commands.whitelist=*',
            'admin.enableServer=false',
            'autopurge.purgeInterval=0',
        ]
        if cluster.size > 1:
            for peer in cluster.nodes:
                lines.append('server.%d=%s:%d:%d' % (peer.myid, cluster.bind, peer.quorum_port, peer.election_port))
        if cluster.tls:
            tls = cluster.tls_material
            lines += [
                'secureClientPort=%d' % self.secure_port,
                'secureClientPortAddress=%s' % cluster.bind,
                'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
                'ssl.keyStore.location=%s' % tls['server_keystore'],
                'ssl.keyStore.password=%s' % tls['password'],
                'ssl.keyStore.type=PKCS12',
                'ssl.trustStore.location=%s' % tls['truststore'],
                'ssl.trustStore.password=%s' % tls['password'],
                'ssl.trustStore.type=PKCS12',
                'ssl.clientAuth=%s' % cluster.tls_client_auth,
            ]
        for key, value in sorted(cluster.extra_config.items()):
            lines.append('%s=%s' % (key, value))
        with open(self.config_file, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        with open(os.path.join(self.directory, 'log4j.properties'), 'w') as handle:
            handle.write(
                'log4j.rootLogger=INFO, FILE\n'
                'log4j.appender.FILE=org.apache.log4j.FileAppender\n'
                'log4j.appender.FILE.File=%s\n'
                'log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n'
                'log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} [myid:%%X{myid}] - %%-5p [%%t:%%C{1}@%%L] - %%m%%n\n'
                % self.log_file)

    def command(self):
        cluster = self.cluster
        jvm = ['-Xmx%s' % cluster.heap] + list(cluster.jvm_flags) + [
            '-Dlog4j.configuration=file:%s' % os.path.join(self.directory, 'log4j.properties'),
            '-Dzookeeper.log.dir=%s' % self.directory,
            '-Djute.maxbuffer=%d' % cluster.jute_maxbuffer]
        if cluster.digest_auth:
            jvm.append('-Dzookeeper.DigestAuthenticationProvider.superDigest=%s' % super_digest(cluster.super_user, cluster.super_password))
        if cluster.extended_types:
            jvm.append('-Dzookeeper.extendedTypesEnabled=true')
        if cluster.container_check_ms:
            jvm.append('-Dznode.container.checkIntervalMs=%d' % cluster.container_check_ms)
        jvm += ['-D%s=%s' % item for item in sorted(cluster.system_properties.items())]
        return [JAVA] + jvm + ['-cp', cluster.classpath(), 'org.apache.zookeeper.server.quorum.QuorumPeerMain', self.config_file]

    def start(self):
        if self.running:
            return
        self._write_config()
        for port in (self.client_port, self.quorum_port, self.election_port, self.secure_port):
            if port and not port_is_free(port, self.cluster.bind):
                raise HarnessError('port %d of %s node %d is taken by another process' % (port, self.cluster.name, self.myid))
        out = open(self.stdout_file, 'ab')
        try:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=self.directory, start_new_session=True)
        finally:
            out.close()
        if self.cluster.track_processes:
            _live_processes.add(self.process)

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def _signal(self, signum):
        if self.running:
            os.kill(self.process.pid, signum)

    def kill(self):
        """SIGKILL: a crash, no clean shutdown."""
        if self.running:
            self._signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
        _live_processes.discard(self.process)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL if the server does not exit in time."""
        if self.running:
            self._signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        _live_processes.discard(self.process)

    def freeze(self):
        """SIGSTOP: the process keeps its sockets but answers nothing (a partition)."""
        self._signal(signal.SIGSTOP)

    def thaw(self):
        self._signal(signal.SIGCONT)

    def mode(self):
        """'leader', 'follower', 'standalone' or None when not serving."""
        answer = four_letter_word(self.cluster.bind, self.client_port, 'srvr')
        for line in answer.splitlines():
            if line.startswith('Mode:'):
                return line.split(':', 1)[1].strip()
        return None

    def tail_log(self, lines=40):
        text = []
        for path in (self.log_file, self.stdout_file):
            try:
                with open(path, 'rb') as handle:
                    content = handle.read().decode('utf-8', 'replace').splitlines()
                text.append('--- %s (last %d lines)\n%s' % (path, lines, '\n'.join(content[-lines:])))
            except OSError:
                pass
        return '\n'.join(text)


# Tests start dozens of short-lived servers: the serial collector and the C1
# compiler alone start fastest and take the least CPU while the JIT warms up.
TEST_JVM_FLAGS = ('-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1')
# Benchmarks measure servers as zkServer.sh runs them in production: the JVM's
# own collector and its full tiered JIT (C2 code serves requests markedly
# cheaper once warm, which is what a long-running ensemble sees).
SERVER_JVM_FLAGS = ()


class ZkCluster(object):
    """A standalone server (size=1) or an ensemble of real ZooKeeper servers.

    Use as a context manager, or call ``start()`` and ``destroy()``.
    ``hosts`` is the connect string clients use (the TLS port when ``tls``).
    ``jvm_flags``: ``TEST_JVM_FLAGS`` (fast start) or ``SERVER_JVM_FLAGS``
    (production-like, for benchmarks), or any list of JVM options.
    """

    def __init__(self, name, size=1, version='3.8', base_dir=None, bind='127.0.0.1', tick_time=500,
                 min_session_timeout=None, max_session_timeout=60000, digest_auth=False, tls=False,
                 tls_client_auth='need', tls_cert_host=None, extended_types=False, container_check_ms=None, jute_maxbuffer=0xfffff,
                 heap='512m', jvm_flags=TEST_JVM_FLAGS, extra_config=None, system_properties=None, track_processes=True):
        if version not in ('3.8', '3.4', '3.9'):
            raise HarnessError('unknown ZooKeeper version %r (3.8, 3.4 or 3.9)' % version)
        if version == '3.4' and (tls or extended_types):
            raise HarnessError('ZooKeeper 3.4 supports neither TLS nor extended types')
        self.name = name
        self.size = size
        self.version = version
        self.bind = bind
        self.tick_time = tick_time
        self.min_session_timeout = min_session_timeout or 2 * tick_time
        self.max_session_timeout = max_session_timeout
        self.digest_auth = digest_auth
        self.super_user = SUPER_USER
        self.super_password = SUPER_PASSWORD
        self.tls = tls
        self.tls_client_auth = tls_client_auth
        self.extended_types = extended_types
        self.container_check_ms = container_check_ms
        self.jute_maxbuffer = jute_maxbuffer
        self.heap = heap
        self.jvm_flags = tuple(jvm_flags)
        self.extra_config = dict(extra_config or {})
        self.system_properties = dict(system_properties or {})
        self.track_processes = track_processes
        self._own_base_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix='zkharness-%s-' % name)
        self.directory = os.path.join(self.base_dir, name)
        os.makedirs(self.directory, exist_ok=True)
        # The server certificate names the bind address unless ``tls_cert_host`` names another host.
        self.tls_cert_host = tls_cert_host or bind
        self.tls_material = make_tls_material(os.path.join(self.directory, 'tls'), self.tls_cert_host) if tls else None
        self.nodes = []
        for myid in range(1, size + 1):
            node_dir = os.path.join(self.directory, 'node%d' % myid)
            os.makedirs(node_dir, exist_ok=True)
            self.nodes.append(ZkNode(self, myid, node_dir))

    # -- description -------------------------------------------------------
    @property
    def host_list(self):
        """Member addresses clients connect to (the TLS ports for a TLS cluster)."""
        if self.tls:
            return [node.secure_address for node in self.nodes]
        return [node.address for node in self.nodes]

    @property
    def hosts(self):
        return ','.join(self.host_list)

    @property
    def plain_hosts(self):
        return ','.join(node.address for node in self.nodes)

    @property
    def ca_file(self):
        return self.tls_material['ca_file'] if self.tls else None

    @property
    def cert_file(self):
        return self.tls_material['cert_file'] if self.tls else None

    @property
    def key_file(self):
        return self.tls_material['key_file'] if self.tls else None

    def classpath(self):
        if self.version == '3.4':
            jars = [zk34_jar()] + [os.path.join(SHARE_JAVA, j) for j in _LOG_JARS]
        elif self.version == '3.9':
            jars = zk39_jars() + [os.path.join(SHARE_JAVA, j) for j in _LOG_JARS + _NETTY_JARS]
        else:
            jars = [os.path.join(SHARE_JAVA, 'zookeeper.jar')] + [os.path.join(SHARE_JAVA, j) for j in _LOG_JARS + _NETTY_JARS]
        if self.version != '3.4' and self.extra_config.get('admin.enableServer') == 'true':
            jars += [os.path.join(SHARE_JAVA, j) for j in _ADMIN_JARS]
        return ':'.join(jars)

    def kazoo_args(self, auth=True):
        """Keyword arguments for ``kazoo.client.KazooClient`` to reach this cluster."""
        args = {'hosts': self.hosts, 'timeout': 10.0}
        if self.tls:
            args.update(use_ssl=True, ca=self.ca_file, certfile=self.cert_file, keyfile=self.key_file, verify_certs=True)
        if auth and self.digest_auth:
            args['auth_data'] = [('digest', '%s:%s' % (self.super_user, self.super_password))]
        return args

    def client_spec(self, auth=True):
        """The plain-dict cluster spec the collection's engine takes (``ClusterSpec.from_dict``)."""
        spec = {'name': self.name, 'hosts': self.host_list}
        if self.tls:
            spec['tls'] = {'enabled': True, 'ca_file': self.ca_file, 'cert_file': self.cert_file,
                           'key_file': self.key_file, 'verify': True}
        if auth and self.digest_auth:
            spec['auth'] = {'scheme': 'digest', 'username': self.super_user, 'password': self.super_password}
        return spec

    def describe(self):
        return {'name': self.name, 'version': self.version, 'size': self.size, 'hosts': self.hosts,
                'plain_hosts': self.plain_hosts, 'directory': self.directory,
                'pids': [node.pid for node in self.nodes], 'digest_auth': self.digest_auth, 'tls': self.tls}

    # -- lifecycle ---------------------------------------------------------
    def start(self, wait=True, timeout=60):
        for node in self.nodes:
            node.start()
        if wait:
            self.wait_serving(timeout)
        return self

    def wait_serving(self, timeout=60):
        """Wait until every running member serves (one leader in an ensemble)."""
        deadline = time.time() + timeout
        modes = {}
        while time.time() < deadline:
            modes = {node.myid: node.mode() for node in self.nodes if node.running}
            dead = [node for node in self.nodes if node.process is not None and not node.running]
            if dead and all(node.process is not None for node in self.nodes) and len(dead) == len(self.nodes):
                break
            if modes and all(modes.values()):
                if self.size == 1 or list(modes.values()).count('leader') == 1:
                    return modes
            time.sleep(0.1)
        logs = '\n'.join(node.tail_log() for node in self.nodes)
        raise HarnessError('cluster %s did not serve within %ss (modes %s)\n%s' % (self.name, timeout, modes, logs))

    def leader_index(self):
        """Index in ``nodes`` of the current leader (0 for a standalone server)."""
        for index, node in enumerate(self.nodes):
            if node.running and node.mode() in ('leader', 'standalone'):
                return index
        return None

    def kill_node(self, index):
        self.nodes[index].kill()

    def stop_node(self, index):
        self.nodes[index].stop()

    def start_node(self, index, wait=True, timeout=60):
        self.nodes[index].start()
        if wait:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.nodes[index].mode():
                    return
                time.sleep(0.1)
            raise HarnessError('node %d of %s did not rejoin within %ss\n%s' % (index, self.name, timeout, self.nodes[index].tail_log()))

    def freeze_node(self, index):
        self.nodes[index].freeze()

    def thaw_node(self, index):
        self.nodes[index].thaw()

    def stop(self):
        for node in self.nodes:
            node.stop()

    def logs(self, lines=40):
        return '\n'.join(node.tail_log(lines) for node in self.nodes)

    def keep_logs(self, destination):
        """Copy every member's logs and config into ``destination``."""
        target = os.path.join(destination, self.name)
        os.makedirs(target, exist_ok=True)
        for node in self.nodes:
            for path in (node.log_file, node.stdout_file, node.config_file):
                if os.path.exists(path):
                    shutil.copy(path, os.path.join(target, 'node%d-%s' % (node.myid, os.path.basename(path))))
        return target

    def destroy(self, keep_logs_in=None):
        """Stop every member and remove the data; logs kept where asked."""
        try:
            self.stop()
        finally:
            if keep_logs_in:
                self.keep_logs(keep_logs_in)
            shutil.rmtree(self.directory, ignore_errors=True)
            if self._own_base_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.destroy()

    def client(self, auth=True, **overrides):
        """A started kazoo client for this cluster (the caller stops it)."""
        from kazoo.client import KazooClient  # the harness runs in the project venv
        args = self.kazoo_args(auth=auth)
        args.update(overrides)
        zk = KazooClient(**args)
        zk.start(timeout=args.get('timeout', 10.0))
        return zk


def _batched(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def load_sample_tree(zk, base='/app', services=3, configs_per_service=20, sequential_per_service=15,
                     ephemeral_holder=None, seed=7):
    """Load a varied tree under ``base`` with kazoo client ``zk`` (fast: batched multis).

    The tree has nested configuration (text, JSON, binary and empty data),
    persistent-sequential children, a digest-ACL'd subtree and, when
    ``ephemeral_holder`` (another connected client) is given, ephemeral
    service registrations held by that client's session. Returns a summary
    with the counts of what was created.
    """
    from kazoo.security import make_digest_acl
    rng = random.Random(seed)
    zk.ensure_path(base)
    creates = []
    for s in range(services):
        service = '%s/service-%d' % (base, s)
        creates.append((service, b''))
        creates.append((service + '/config', json.dumps({'service': s, 'replicas': 3}).encode()))
        for c in range(configs_per_service):
            payload = rng.randbytes(64) if c % 5 == 0 else ('value-%d-%d' % (s, c)).encode()
            creates.append(('%s/config/key-%03d' % (service, c), payload if c % 7 else b''))
        creates.append((service + '/queue', b''))
        creates.append((service + '/instances', b''))
    for batch in _batched(creates, 200):
        txn = zk.transaction()
        for path, data in batch:
            txn.create(path, data)
        results = txn.commit()
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise HarnessError('loading sample tree failed: %r' % errors[:3])
    sequential = 0
    for s in range(services):
        for i in range(sequential_per_service):
            zk.create('%s/service-%d/queue/item-' % (base, s), ('job %d' % i).encode(), sequence=True)
            sequential += 1
    secret_acl = [make_digest_acl('app', 'app-password', all=True)]
    zk.create(base + '/secured', b'top-secret', acl=secret_acl)
    ephemerals = 0
    if ephemeral_holder is not None:
        for s in range(services):
            for i in range(2):
                ephemeral_holder.create('%s/service-%d/instances/host-%d' % (base, s, i), b'10.0.0.%d:8080' % i, ephemeral=True)
                ephemerals += 1
    return {'base': base, 'persistent': 1 + len(creates) + sequential + 1, 'sequential': sequential,
            'ephemeral': ephemerals, 'acl_protected': [base + '/secured']}
