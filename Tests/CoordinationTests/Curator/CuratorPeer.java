/*
 * CuratorPeer: Apache Curator 5.4.0 as a real peer for the Swift interoperability tests.
 *
 * The tests start it as a child process. The first argument is a command, followed by
 * --zk HOST:PORT and the command's own options:
 *
 *   mutex            --path P --counter C --iterations N [--hold-ms H]
 *   rwlock           --path P --counter C --iterations N --role read|write [--hold-ms H]
 *   leader-selector  --path P --id ID      (then stdin: resign | participants | quit)
 *   leader-latch     --path P --id ID      (same stdin commands)
 *   discovery-register --base B --name N --id I --address A --port P [--payload-json J]
 *   discovery-query  --base B --name N [--expect-count K] [--timeout-ms T]
 *   shared-count     --path P --increments N
 *   atomic-long      --path P --increments N [--promoted-lock L]
 *   double-barrier   --path P --members M --id ID   (then stdin: leave)
 *   barrier-wait     --path P
 *   semaphore        --path P --leases L --holders H --iterations N [--hold-ms M]
 *
 * Output: one line per event on stdout, flushed at once. Errors go to stderr.
 * Exit status: 0 success; 1 an invariant was violated (a "VIOLATION <text>" line comes
 * first) or discovery-query did not see the expected count; 2 usage error; 3 any other
 * failure (connection, unexpected ZooKeeper error).
 *
 * Session: timeout 10 s, connection timeout 15 s, ExponentialBackoffRetry(100, 5).
 *
 * Classpath (Debian 12 packages libcurator-{client,framework,recipes,discovery}-java 5.4.0,
 * libzookeeper-java 3.8.0, libguava-java, libslf4j-java, libjackson2-*), all in /usr/share/java:
 *
 *   compile and run: curator-recipes.jar curator-framework.jar curator-client.jar
 *                    curator-x-discovery.jar zookeeper.jar zookeeper-jute.jar guava.jar
 *                    slf4j-api.jar jackson-databind.jar jackson-core.jar jackson-annotations.jar
 *   run only:        slf4j-simple.jar (a logging binding; without it slf4j prints a three-line
 *                    "no binding" notice on stderr and logs nothing, which is harmless)
 *
 *   javac -nowarn -d OUT -cp "/usr/share/java/curator-recipes.jar:...:/usr/share/java/jackson-annotations.jar" CuratorPeer.java
 *   java -cp "OUT:<same jars>:/usr/share/java/slf4j-simple.jar" CuratorPeer mutex --zk ...
 *
 * javac may print "bad path element" warnings: the jars' manifests name optional jars Debian
 * does not ship (jetty, jline, ...). They are harmless. Curator's own logging is set to "error"
 * unless -Dorg.slf4j.simpleLogger.defaultLogLevel is given.
 *
 * Details a test may rely on:
 * - leader-*: "resign" on a selector that does not lead is ignored; on a latch it always closes
 *   the latch and re-enters at the back of the queue. "participants" lists ids in lock order
 *   (Curator marks the first one as leader). A leader that quits prints "follower ID" first.
 * - discovery-query: "instance" lines are sorted by id; "provider" lines follow the provider
 *   cache's own order (round robin starting at its first entry).
 * - double-barrier: a note goes to stderr if enter() returned while <P>/ready does not exist.
 * - barrier-wait prints nothing before it blocks.
 */

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.strategies.RoundRobinStrategy;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

@SuppressWarnings({"rawtypes", "unchecked", "serial"})
public class CuratorPeer {

    /** An invariant was violated: printed as "VIOLATION <text>", exit 1. */
    static class Violation extends Exception {
        Violation(String m) { super(m); }
    }

    /** Bad command line: exit 2. */
    static class Usage extends Exception {
        Usage(String m) { super(m); }
    }

    static final BufferedReader STDIN = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    static final ObjectMapper JSON = new ObjectMapper();

    /** one line on stdout, flushed; synchronized because recipe callbacks print from their own threads */
    static synchronized void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    // ------------------------------------------------------------------ options

    static class Opts {
        final Map<String, String> m = new HashMap<>();
        final java.util.Set<String> used = new java.util.HashSet<>();

        Opts(String[] args, int from) throws Usage {
            for (int i = from; i < args.length; i++) {
                String a = args[i];
                if (!a.startsWith("--")) throw new Usage("unexpected argument " + a);
                int eq = a.indexOf('=');
                if (eq > 0) {
                    m.put(a.substring(2, eq), a.substring(eq + 1));
                } else {
                    if (i + 1 >= args.length) throw new Usage("missing value for " + a);
                    m.put(a.substring(2), args[++i]);
                }
            }
        }

        /** every command calls this once it has read its options: catches misspelt ones */
        void done() throws Usage {
            for (String k : m.keySet())
                if (!used.contains(k)) throw new Usage("unknown option --" + k);
        }

        boolean has(String k) { used.add(k); return m.containsKey(k); }

        String str(String k) throws Usage {
            used.add(k);
            String v = m.get(k);
            if (v == null) throw new Usage("missing --" + k);
            return v;
        }

        String str(String k, String def) { used.add(k); return m.getOrDefault(k, def); }

        int num(String k) throws Usage { return parse(k, str(k)); }

        int num(String k, int def) throws Usage { return has(k) ? parse(k, m.get(k)) : def; }

        static int parse(String k, String v) throws Usage {
            try {
                return Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new Usage("--" + k + " needs an integer, got " + v);
            }
        }
    }

    // ------------------------------------------------------------------ helpers

    static CuratorFramework connect(String zk) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(zk)
            .sessionTimeoutMs(10_000)
            .connectionTimeoutMs(15_000)
            .retryPolicy(new ExponentialBackoffRetry(100, 5))
            .build();
        c.start();
        if (!c.blockUntilConnected(15, TimeUnit.SECONDS)) {
            c.close();
            throw new IOException("could not connect to " + zk + " within 15 s");
        }
        return c;
    }

    static String readLine() throws IOException {
        String l = STDIN.readLine();
        return l == null ? null : l.trim();
    }

    static byte[] longBytes(long v) { return ByteBuffer.allocate(8).putLong(v).array(); }

    /**
     * The shared counter used by mutex and rwlock: an 8-byte big-endian long. Read it (creating
     * it as 0 if missing), then write value+1 with the version just read. Under a correct lock
     * nobody else writes in between, so BadVersion means two holders.
     */
    static long incrementCounter(CuratorFramework c, String counter) throws Exception {
        Stat stat = new Stat();
        byte[] data;
        try {
            data = c.getData().storingStatIn(stat).forPath(counter);
        } catch (KeeperException.NoNodeException e) {
            try {
                c.create().creatingParentsIfNeeded().forPath(counter, longBytes(0));
            } catch (KeeperException.NodeExistsException ignored) {
                // another peer created it first
            }
            data = c.getData().storingStatIn(stat).forPath(counter);
        }
        if (data == null || data.length != 8)
            throw new Violation("counter " + counter + " holds " + (data == null ? "null" : data.length + " bytes")
                                + ", not an 8-byte long");
        long next = ByteBuffer.wrap(data).getLong() + 1;
        try {
            c.setData().withVersion(stat.getVersion()).forPath(counter, longBytes(next));
        } catch (KeeperException.BadVersionException e) {
            throw new Violation("counter " + counter + " changed while we held the lock (lost update)");
        }
        return next;
    }

    /** create an ephemeral marker; NodeExists means someone else holds what we hold */
    static void createMarker(CuratorFramework c, String path, String what) throws Exception {
        try {
            c.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(path, new byte[0]);
        } catch (KeeperException.NodeExistsException e) {
            throw new Violation("two " + what + " at once (" + path + " exists)");
        }
    }

    static void sleepMs(int ms) throws InterruptedException {
        if (ms > 0) Thread.sleep(ms);
    }

    // ------------------------------------------------------------------ 1. mutex

    static int mutex(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), counter = o.str("counter");
        int n = o.num("iterations"), hold = o.num("hold-ms", 2);
        o.done();
        InterProcessMutex lock = new InterProcessMutex(c, path);
        String holder = counter + "-holder";
        for (int i = 0; i < n; i++) {
            lock.acquire();
            try {
                createMarker(c, holder, "holders");
                incrementCounter(c, counter);
                sleepMs(hold);
                c.delete().forPath(holder);
            } finally {
                lock.release();
            }
        }
        out("done " + n);
        return 0;
    }

    // ------------------------------------------------------------------ 2. rwlock

    static int rwlock(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), counter = o.str("counter"), role = o.str("role");
        int n = o.num("iterations"), hold = o.num("hold-ms", 2);
        o.done();
        if (!role.equals("read") && !role.equals("write")) throw new Usage("--role must be read or write");
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, path);
        String writerMarker = counter + "-writer";
        String readersDir = counter + "-readers";
        for (int i = 0; i < n; i++) {
            if (role.equals("write")) {
                rw.writeLock().acquire();
                try {
                    createMarker(c, writerMarker, "writers");
                    List<String> readers;
                    try {
                        readers = c.getChildren().forPath(readersDir);
                    } catch (KeeperException.NoNodeException e) {
                        readers = new ArrayList<>();
                    }
                    if (!readers.isEmpty())
                        throw new Violation("writer holds the lock while readers are inside: " + readers);
                    incrementCounter(c, counter);
                    sleepMs(hold);
                    c.delete().forPath(writerMarker);
                } finally {
                    rw.writeLock().release();
                }
            } else {
                rw.readLock().acquire();
                try {
                    // the parent stays (persistent); only our sequential child is removed
                    String mine = c.create().creatingParentsIfNeeded()
                        .withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(readersDir + "/r-", new byte[0]);
                    if (c.checkExists().forPath(writerMarker) != null)
                        throw new Violation("reader holds the lock while a writer is inside");
                    sleepMs(hold);
                    c.delete().forPath(mine);
                } finally {
                    rw.readLock().release();
                }
            }
        }
        out("done " + n);
        return 0;
    }

    // ------------------------------------------------------------------ 3. leader election

    static String participants(Collection<Participant> ps) {
        // Curator returns them in lock order and marks the first readable node as leader
        List<String> ids = new ArrayList<>();
        for (Participant p : ps) ids.add(p.getId());
        return "participants " + String.join(",", ids);
    }

    static int leaderSelector(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), id = o.str("id");
        o.done();
        final Semaphore resign = new Semaphore(0);
        final boolean[] leading = {false};   // guarded by `resign`
        // Our own executor, so that on exit we can wait for takeLeadership() to unwind and release
        // the mutex before the client is closed (LeaderSelector.close() only interrupts it).
        ExecutorService exec = Executors.newSingleThreadExecutor();
        LeaderSelector sel = new LeaderSelector(c, path, exec, new LeaderSelectorListenerAdapter() {
            // The adapter cancels leadership (interrupts this thread) on SUSPENDED/LOST.
            @Override public void takeLeadership(CuratorFramework client) throws Exception {
                synchronized (resign) { resign.drainPermits(); leading[0] = true; }
                out("leader " + id);
                try {
                    resign.acquire();            // until "resign", close() or a lost connection
                } finally {
                    synchronized (resign) { leading[0] = false; }
                    out("follower " + id);
                }
                // returning releases the mutex; autoRequeue queues a fresh attempt
            }
        });
        sel.setId(id);
        sel.autoRequeue();
        sel.start();
        try {
            for (String l; (l = readLine()) != null; ) {
                if (l.equals("resign")) {
                    synchronized (resign) { if (leading[0]) resign.release(); }
                } else if (l.equals("participants")) {
                    out(participants(sel.getParticipants()));
                } else if (l.equals("quit")) {
                    break;
                } else if (!l.isEmpty()) {
                    System.err.println("unknown command: " + l);
                }
            }
        } finally {
            sel.close();
            exec.shutdownNow();
            exec.awaitTermination(10, TimeUnit.SECONDS);
        }
        return 0;
    }

    static LeaderLatch newLatch(CuratorFramework c, String path, String id) throws Exception {
        LeaderLatch latch = new LeaderLatch(c, path, id);
        // listeners run synchronously in the latch's thread (no executor given), so a
        // close(NOTIFY_LEADER) prints "follower" before close() returns
        latch.addListener(new LeaderLatchListener() {
            @Override public void isLeader() { out("leader " + id); }
            @Override public void notLeader() { out("follower " + id); }
        });
        latch.start();
        return latch;
    }

    static int leaderLatch(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), id = o.str("id");
        o.done();
        LeaderLatch latch = newLatch(c, path, id);
        try {
            for (String l; (l = readLine()) != null; ) {
                if (l.equals("resign")) {
                    // NOTIFY_LEADER: notLeader() fires if we led (the default SILENT close would not)
                    latch.close(LeaderLatch.CloseMode.NOTIFY_LEADER);
                    latch = newLatch(c, path, id);   // re-enter at the back of the queue
                } else if (l.equals("participants")) {
                    out(participants(latch.getParticipants()));
                } else if (l.equals("quit")) {
                    break;
                } else if (!l.isEmpty()) {
                    System.err.println("unknown command: " + l);
                }
            }
        } finally {
            latch.close(LeaderLatch.CloseMode.NOTIFY_LEADER);
        }
        return 0;
    }

    // ------------------------------------------------------------------ 4./5. service discovery

    /**
     * Payload class Map. The default (compatible) JsonInstanceSerializer writes the payload with
     * its runtime class, {"@class":"java.util.HashMap",...}; reading accepts any Map (an object
     * without "@class" becomes a LinkedHashMap).
     */
    static ServiceDiscovery<Map> discovery(CuratorFramework c, String base) throws Exception {
        ServiceDiscovery<Map> d = ServiceDiscoveryBuilder.builder(Map.class)
            .client(c)
            .basePath(base)
            .serializer(new JsonInstanceSerializer<>(Map.class))
            .build();
        d.start();
        return d;
    }

    static int discoveryRegister(CuratorFramework c, Opts o) throws Exception {
        String base = o.str("base"), name = o.str("name"), id = o.str("id"), address = o.str("address");
        int port = o.num("port");
        HashMap<String, Object> payload = null;
        if (o.has("payload-json")) {
            try {
                payload = JSON.readValue(o.str("payload-json"), new TypeReference<HashMap<String, Object>>() {});
            } catch (IOException e) {
                throw new Usage("--payload-json is not a JSON object: " + e.getMessage());
            }
        }
        o.done();
        ServiceInstance<Map> inst = ServiceInstance.<Map>builder()
            .name(name).id(id).address(address).port(port).payload(payload).build();   // DYNAMIC = ephemeral
        try (ServiceDiscovery<Map> d = discovery(c, base)) {
            d.registerService(inst);
            out("registered");
            for (String l; (l = readLine()) != null && !l.equals("quit"); ) { /* wait */ }
            d.unregisterService(inst);
        }
        return 0;
    }

    static String payloadJson(Object p) throws IOException {
        if (p == null) return "null";
        // sorted keys, so the line does not depend on HashMap order
        if (p instanceof Map) p = new TreeMap<>((Map<?, ?>) p);
        return JSON.writeValueAsString(p);
    }

    static int discoveryQuery(CuratorFramework c, Opts o) throws Exception {
        String base = o.str("base"), name = o.str("name");
        int expect = o.num("expect-count", -1), timeoutMs = o.num("timeout-ms", 15_000);
        o.done();
        try (ServiceDiscovery<Map> d = discovery(c, base)) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            List<ServiceInstance<Map>> found;
            while (true) {
                found = new ArrayList<>(d.queryForInstances(name));
                if (expect < 0 || found.size() == expect) break;
                if (System.nanoTime() > deadline) {
                    out("VIOLATION expected " + expect + " instances of " + name + ", found " + found.size()
                        + " after " + timeoutMs + " ms");
                    return 1;
                }
                Thread.sleep(100);
            }
            found.sort(Comparator.comparing(ServiceInstance::getId));   // ZK child order is arbitrary
            for (ServiceInstance<Map> i : found)
                out("instance " + i.getId() + " " + i.getAddress() + " " + i.getPort() + " " + payloadJson(i.getPayload()));
            // the provider reads from its own ServiceCache, filled when start() returns
            try (ServiceProvider<Map> p = d.serviceProviderBuilder()
                     .serviceName(name).providerStrategy(new RoundRobinStrategy<>()).build()) {
                p.start();
                for (int k = 0; k < 3; k++) {
                    ServiceInstance<Map> i = p.getInstance();
                    out("provider " + (i == null ? "null" : i.getId()));
                }
            }
        }
        return 0;
    }

    // ------------------------------------------------------------------ 6. shared count

    static int sharedCount(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path");
        int n = o.num("increments");
        o.done();
        try (SharedCount sc = new SharedCount(c, path, 0)) {
            sc.start();
            for (int i = 0; i < n; i++) {
                // trySetCount fails (false) when our cached version is stale; it then refreshes
                // the cache (or the watch does), so simply try again with the new value
                while (true) {
                    VersionedValue<Integer> v = sc.getVersionedValue();
                    if (sc.trySetCount(v, v.getValue() + 1)) break;
                }
            }
            out("done " + n);
            // read the node itself: the cached value may lag behind other peers' writes
            byte[] b = c.getData().forPath(path);
            out("count " + ByteBuffer.wrap(b).getInt());
        }
        return 0;
    }

    // ------------------------------------------------------------------ 7. atomic long

    static int atomicLong(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path");
        int n = o.num("increments");
        String lockPath = o.str("promoted-lock", null);
        o.done();
        DistributedAtomicLong al = lockPath == null
            ? new DistributedAtomicLong(c, path, new RetryNTimes(1000, 1))
            // builder defaults: wait for the lock forever, then one try under it (RetryNTimes(0, 0))
            : new DistributedAtomicLong(c, path, new RetryNTimes(1000, 1),
                                        PromotedToLock.builder().lockPath(lockPath).build());
        for (int i = 0; i < n; i++) {
            while (!al.increment().succeeded()) { /* the retry policy ran out: try again */ }
        }
        out("done " + n);
        AtomicValue<Long> v = al.get();
        out("value " + v.postValue());
        return 0;
    }

    // ------------------------------------------------------------------ 8./9. barriers

    static int doubleBarrier(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), id = o.str("id");
        int members = o.num("members");
        o.done();
        DistributedDoubleBarrier b = new DistributedDoubleBarrier(c, path, members);
        out("entering " + id);
        b.enter();
        out("entered " + id);
        // Curator 5.4's enter() waits only once and returns on any wake-up (fixed after 5.4,
        // GH-1290). After a real entry P/ready exists until everybody has left, so say so when not.
        if (c.checkExists().forPath(path + "/ready") == null)
            System.err.println("warning: enter() returned but " + path + "/ready does not exist");
        readLine();   // "leave" (or end of input)
        out("leaving " + id);
        b.leave();
        out("left " + id);
        return 0;
    }

    // ------------------------------------------------------------------ 10. semaphore

    /**
     * Holds one of L leases N times; while holding, an ephemeral sequential node under H marks
     * the holder, and more than L of them at once is a violation.
     */
    static int semaphore(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path"), holders = o.str("holders");
        int leases = o.num("leases"), n = o.num("iterations"), hold = o.num("hold-ms", 5);
        o.done();
        InterProcessSemaphoreV2 semaphore = new InterProcessSemaphoreV2(c, path, leases);
        for (int i = 0; i < n; i++) {
            Lease lease = semaphore.acquire();
            try {
                String mine = c.create().creatingParentsIfNeeded()
                    .withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath(holders + "/h-", new byte[0]);
                int inside = c.getChildren().forPath(holders).size();
                if (inside > leases) throw new Violation(inside + " holders of " + leases + " leases");
                sleepMs(hold);
                c.delete().forPath(mine);
            } finally {
                semaphore.returnLease(lease);
            }
        }
        out("done " + n);
        return 0;
    }

    static int barrierWait(CuratorFramework c, Opts o) throws Exception {
        String path = o.str("path");
        o.done();
        new DistributedBarrier(c, path).waitOnBarrier();
        out("released");
        return 0;
    }

    // ------------------------------------------------------------------ main

    static final List<String> COMMANDS = java.util.Arrays.asList(
        "mutex", "rwlock", "leader-selector", "leader-latch", "discovery-register", "discovery-query",
        "shared-count", "atomic-long", "double-barrier", "barrier-wait", "semaphore");

    static void usage() {
        System.err.println("usage: CuratorPeer COMMAND --zk HOST:PORT [options]  (options: see CuratorPeer.java)");
        System.err.println("commands: " + String.join(" ", COMMANDS));
    }

    public static void main(String[] args) {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null)
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        int rc;
        CuratorFramework c = null;
        try {
            if (args.length < 1) throw new Usage("missing command");
            String cmd = args[0];
            if (!COMMANDS.contains(cmd)) throw new Usage("unknown command " + cmd);
            Opts o = new Opts(args, 1);
            c = connect(o.str("zk"));
            switch (cmd) {
                case "mutex": rc = mutex(c, o); break;
                case "rwlock": rc = rwlock(c, o); break;
                case "leader-selector": rc = leaderSelector(c, o); break;
                case "leader-latch": rc = leaderLatch(c, o); break;
                case "discovery-register": rc = discoveryRegister(c, o); break;
                case "discovery-query": rc = discoveryQuery(c, o); break;
                case "shared-count": rc = sharedCount(c, o); break;
                case "atomic-long": rc = atomicLong(c, o); break;
                case "double-barrier": rc = doubleBarrier(c, o); break;
                case "barrier-wait": rc = barrierWait(c, o); break;
                case "semaphore": rc = semaphore(c, o); break;
                default: throw new IllegalStateException(cmd);
            }
        } catch (Usage e) {
            System.err.println("CuratorPeer: " + e.getMessage());
            usage();
            rc = 2;
        } catch (Violation e) {
            out("VIOLATION " + e.getMessage());
            rc = 1;
        } catch (Exception e) {
            System.err.println("CuratorPeer: " + e);
            e.printStackTrace(System.err);
            rc = 3;
        }
        if (c != null) c.close();
        System.out.flush();
        System.err.flush();
        // exit explicitly: recipe executors may have left non-daemon threads behind
        System.exit(rc);
    }
}
