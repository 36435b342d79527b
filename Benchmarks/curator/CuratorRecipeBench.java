/*
 * CuratorRecipeBench: Apache Curator 5.4.0 reference numbers for four recipe workloads
 * (see README.md next to this file).
 *
 *   java -cp ... CuratorRecipeBench --zk HOST:PORT --workload NAME [--n N] [--clients C]
 *        [--payload BYTES] [--timeout SECONDS]
 *
 *   tree-cache-load         (n=10000) CuratorCache over n prepared nodes: time to initialized()
 *   tree-cache-propagation  (n=2000)  setData on one of 1000 cached nodes until the cache's
 *                                     NODE_CHANGED listener saw exactly that data
 *   service-lookup          (n=200000) ServiceProvider.getInstance() (round robin, from its cache)
 *                                     over 20 registered instances
 *   counter-increments      (n=2000, clients=8) DistributedAtomicLong.increment() from C sessions
 *
 * Same contract as ../../../shared/bench-peers (WORKLOADS.md): runs under a fresh
 * /bench/curator-<16 hex>, deletes it afterwards, prints one JSON object on the last line of
 * stdout: impl, workload, n, clients, seconds, ops_per_sec, p50_us, p99_us, ok, [error],
 * client_cpu_us_per_op. Exit 0 when ok, 1 when the workload's check failed, 2 on usage errors.
 *
 * Session: timeout 10 s, connection timeout 15 s, ExponentialBackoffRetry(100, 5).
 */

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.BackgroundCallback;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.strategies.RoundRobinStrategy;
import org.apache.zookeeper.KeeperException;

public class CuratorRecipeBench {
    static final String IMPL = "curator";
    static final int WINDOW = 1000;          // in-flight creates while preparing trees

    static final Map<String, int[]> DEFAULTS = new LinkedHashMap<>();   // {n, clients}
    static {
        DEFAULTS.put("tree-cache-load", new int[] {10000, 1});
        DEFAULTS.put("tree-cache-propagation", new int[] {2000, 1});
        DEFAULTS.put("service-lookup", new int[] {200000, 1});
        DEFAULTS.put("counter-increments", new int[] {2000, 8});
    }

    /** The workload's own check failed (or it could not finish). */
    @SuppressWarnings("serial")
    static class BenchFailure extends Exception {
        BenchFailure(String m) { super(m); }
    }

    /** seconds of the measured phase, per-op latencies in ns (or null), CPU per op */
    static class Result {
        final double seconds;
        final long[] lat;
        final double cpuUsPerOp;
        final Map<String, Object> extra = new LinkedHashMap<>();   // workload-specific JSON fields
        Result(double seconds, long[] lat, long cpu0, int n) {
            this.seconds = seconds;
            this.lat = lat;
            this.cpuUsPerOp = (cpuNs() - cpu0) / 1000.0 / n;
        }
    }

    // ------------------------------------------------------------------ helpers

    static final com.sun.management.OperatingSystemMXBean OS =
        (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    /** process CPU (user+sys, all threads, JIT and GC included); moves in 10 ms steps on Linux */
    static long cpuNs() { return OS.getProcessCpuTime(); }

    static long deadlineIn(double seconds) { return System.nanoTime() + (long) (seconds * 1e9); }

    static long left(long deadline) { return Math.max(0, deadline - System.nanoTime()); }

    /** nearest-rank percentile, rounded to whole microseconds */
    static Long pctUs(long[] v, int p) {
        if (v == null || v.length == 0) return null;
        long[] s = v.clone();
        Arrays.sort(s);
        int m = s.length;
        int k = (int) Math.min(Math.max(((long) m * p + 99) / 100, 1), m);
        return (s[k - 1] + 500) / 1000;
    }

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
            throw new BenchFailure("could not connect to " + zk);
        }
        return c;
    }

    static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try { c.close(); } catch (Exception e) { /* best effort */ }
    }

    /** /bench/curator-<16 hex>, created now and deleted (recursively) at the end */
    static class Base {
        final String path;
        boolean createdRoot = false;   // then /bench is removed too, if nobody else uses it

        Base(CuratorFramework c) throws Exception {
            byte[] r = new byte[8];
            new java.security.SecureRandom().nextBytes(r);
            StringBuilder sb = new StringBuilder("/bench/" + IMPL + "-");
            for (byte b : r) sb.append(String.format("%02x", b));
            path = sb.toString();
            try {
                c.create().forPath(path, new byte[0]);
            } catch (KeeperException.NoNodeException e) {
                try {
                    c.create().forPath("/bench", new byte[0]);
                    createdRoot = true;
                } catch (KeeperException.NodeExistsException ignored) {
                    // another peer created it just now
                }
                c.create().forPath(path, new byte[0]);
            }
        }

        void remove(CuratorFramework c) {
            try {
                c.delete().deletingChildrenIfNeeded().forPath(path);
            } catch (KeeperException.NoNodeException ignored) {
            } catch (Exception e) {
                System.err.println("cleanup of " + path + " failed: " + e);
            }
            if (createdRoot) {
                try {
                    c.delete().forPath("/bench");
                } catch (Exception ignored) { // not empty (someone else's run) or gone: fine
                }
            }
        }
    }

    /**
     * Create `count` nodes root/d<i/100>/n<i> with `payload`, 100 per directory: the
     * directories one by one, the leaves pipelined (inBackground, at most WINDOW in flight).
     */
    static void buildTree(CuratorFramework c, String root, int count, byte[] payload, long deadline)
            throws Exception {
        c.create().forPath(root, new byte[0]);
        for (int d = 0; d < (count + 99) / 100; d++) c.create().forPath(root + "/d" + d, new byte[0]);
        Semaphore window = new Semaphore(WINDOW);
        AtomicInteger errors = new AtomicInteger();
        BackgroundCallback cb = (client, event) -> {
            if (event.getResultCode() != 0) errors.incrementAndGet();
            window.release();
        };
        for (int i = 0; i < count; i++) {
            if (!window.tryAcquire(left(deadline), TimeUnit.NANOSECONDS)) throw new BenchFailure("tree creation timed out");
            c.create().inBackground(cb).forPath(root + "/d" + (i / 100) + "/n" + i, payload);
        }
        if (!window.tryAcquire(WINDOW, left(deadline), TimeUnit.NANOSECONDS)) throw new BenchFailure("tree creation timed out");
        if (errors.get() > 0) throw new BenchFailure(errors.get() + " creates failed while building the tree");
    }

    // ------------------------------------------------------------------ tree-cache-load

    static Result treeCacheLoad(CuratorFramework c, String base, int n, byte[] payload, double timeout)
            throws Exception {
        long deadline = deadlineIn(timeout);
        String root = base + "/t";
        buildTree(c, root, n, payload, deadline);
        CuratorCache cache = CuratorCache.build(c, root);
        try {
            CountDownLatch initialized = new CountDownLatch(1);
            cache.listenable().addListener(CuratorCacheListener.builder().forInitialized(initialized::countDown).build());
            long cpu0 = cpuNs();
            long t0 = System.nanoTime();
            cache.start();
            if (!initialized.await(left(deadline), TimeUnit.NANOSECONDS)) throw new BenchFailure("cache did not initialize");
            double seconds = (System.nanoTime() - t0) / 1e9;
            Result r = new Result(seconds, null, cpu0, n);
            int expected = n + 1 + (n + 99) / 100;   // leaves + root + directories
            if (cache.size() != expected)
                throw new BenchFailure("cache holds " + cache.size() + " nodes, expected " + expected);
            return r;
        } finally {
            cache.close();   // before the cleanup, so it does not process the deletions
        }
    }

    // ------------------------------------------------------------------ tree-cache-propagation

    /** the change the measuring thread is waiting for */
    static class Pending {
        final String path;
        final byte[] data;
        final CountDownLatch seen = new CountDownLatch(1);
        volatile long seenAt;
        Pending(String path, byte[] data) { this.path = path; this.data = data; }
    }

    static Result treeCachePropagation(CuratorFramework c, String base, int n, byte[] payload, double timeout)
            throws Exception {
        final int nodes = 1000;
        long deadline = deadlineIn(timeout);
        String root = base + "/t";
        buildTree(c, root, nodes, payload, deadline);
        AtomicReference<Pending> pending = new AtomicReference<>();
        CuratorCache cache = CuratorCache.build(c, root);
        try {
            CountDownLatch initialized = new CountDownLatch(1);
            cache.listenable().addListener(CuratorCacheListener.builder()
                .forChanges((oldNode, node) -> {
                    long t = System.nanoTime();
                    Pending p = pending.get();
                    if (p != null && p.path.equals(node.getPath()) && Arrays.equals(p.data, node.getData())) {
                        p.seenAt = t;
                        p.seen.countDown();
                    }
                })
                .forInitialized(initialized::countDown)
                .build());
            cache.start();
            if (!initialized.await(30, TimeUnit.SECONDS)) throw new BenchFailure("cache did not initialize");

            Random rnd = new Random(42);
            long[] lat = new long[n];
            long cpu0 = cpuNs();
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                int k = rnd.nextInt(nodes);
                // a distinct payload per op: the op number written over the start of the payload
                byte[] data = payload.clone();
                byte[] tag = ("op" + i + ";").getBytes();
                if (data.length < tag.length) data = tag; else System.arraycopy(tag, 0, data, 0, tag.length);
                Pending p = new Pending(root + "/d" + (k / 100) + "/n" + k, data);
                pending.set(p);
                long s = System.nanoTime();
                c.setData().forPath(p.path, data);
                long wait = Math.max(100_000_000L, Math.min(30_000_000_000L, left(deadline)));
                if (!p.seen.await(wait, TimeUnit.NANOSECONDS))
                    throw new BenchFailure("the cache did not see change " + i + " of " + p.path);
                lat[i] = p.seenAt - s;
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            return new Result(seconds, lat, cpu0, n);
        } finally {
            cache.close();
        }
    }

    // ------------------------------------------------------------------ service-lookup

    static Result serviceLookup(String zk, CuratorFramework c, String base, int n, double timeout) throws Exception {
        final int instances = 20;
        String services = base + "/services";
        CuratorFramework registrar = null;
        ServiceDiscovery<String> reg = null, lookup = null;
        ServiceProvider<String> provider = null;
        try {
            // the 20 instances live in their own session, the provider in the main one
            registrar = connect(zk);
            reg = ServiceDiscoveryBuilder.builder(String.class).client(registrar).basePath(services)
                .serializer(new JsonInstanceSerializer<>(String.class)).build();
            reg.start();
            for (int i = 0; i < instances; i++)
                reg.registerService(ServiceInstance.<String>builder()
                    .name("svc").id("i-" + i).address("10.0.0." + (i + 1)).port(8000 + i).build());   // DYNAMIC
            lookup = ServiceDiscoveryBuilder.builder(String.class).client(c).basePath(services)
                .serializer(new JsonInstanceSerializer<>(String.class)).build();
            lookup.start();
            provider = lookup.serviceProviderBuilder().serviceName("svc")
                .providerStrategy(new RoundRobinStrategy<>()).build();
            provider.start();
            long ready = deadlineIn(30);
            while (provider.getAllInstances().size() != instances) {
                if (System.nanoTime() > ready) throw new BenchFailure("the provider's cache never held 20 instances");
                Thread.sleep(10);
            }

            // no per-op timing: one call is ~1 µs, a clock read per call would be a large share of it
            ServiceInstance<?>[] got = new ServiceInstance<?>[n];
            long cpu0 = cpuNs();
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) got[i] = provider.getInstance();
            double seconds = (System.nanoTime() - t0) / 1e9;
            Result r = new Result(seconds, null, cpu0, n);

            Map<String, Integer> counts = new HashMap<>();
            for (ServiceInstance<?> s : got) counts.merge(s == null ? "null" : s.getId(), 1, Integer::sum);
            if (counts.size() != instances) throw new BenchFailure("round robin returned " + counts.keySet());
            for (Map.Entry<String, Integer> e : counts.entrySet())
                if (Math.abs(e.getValue() - n / instances) > 1)
                    throw new BenchFailure(e.getKey() + " returned " + e.getValue() + " times, expected " + n / instances + " +-1");
            return r;
        } finally {
            closeQuietly(provider);
            closeQuietly(lookup);
            closeQuietly(reg);        // unregisters the instances
            closeQuietly(registrar);
        }
    }

    // ------------------------------------------------------------------ counter-increments

    static Result counterIncrements(String zk, String base, int n, int clients, double timeout) throws Exception {
        String path = base + "/counter";
        List<CuratorFramework> sessions = new ArrayList<>();
        try {
            List<DistributedAtomicLong> counters = new ArrayList<>();
            for (int k = 0; k < clients; k++) {
                CuratorFramework s = connect(zk);
                sessions.add(s);
                counters.add(new DistributedAtomicLong(s, path, new RetryNTimes(1000, 1)));
            }
            counters.get(0).initialize(0L);   // outside the measurement: no create race on the first op

            AtomicInteger tickets = new AtomicInteger();
            java.util.concurrent.atomic.AtomicLong tries = new java.util.concurrent.atomic.AtomicLong();
            long[] lat = new long[n];                     // indexed by ticket
            List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
            CyclicBarrier start = new CyclicBarrier(clients + 1);
            long deadline = deadlineIn(timeout);
            List<Thread> threads = new ArrayList<>();
            for (int k = 0; k < clients; k++) {
                DistributedAtomicLong counter = counters.get(k);
                Thread t = new Thread(() -> {
                    try {
                        start.await();
                        for (int i; (i = tickets.getAndIncrement()) < n; ) {
                            long s = System.nanoTime();
                            // increment() retries internally (RetryNTimes(1000, 1)); when it gives up, go again
                            AtomicValue<Long> v;
                            while (!(v = counter.increment()).succeeded()) {
                                tries.addAndGet(v.getStats().getOptimisticTries());
                                if (System.nanoTime() > deadline) throw new BenchFailure("increment timed out");
                            }
                            tries.addAndGet(v.getStats().getOptimisticTries());
                            lat[i] = System.nanoTime() - s;
                        }
                    } catch (Exception e) {
                        errors.add(e.toString());
                    }
                }, "incrementer-" + k);
                t.setDaemon(true);
                threads.add(t);
                t.start();
            }
            long cpu0 = cpuNs();
            start.await(30, TimeUnit.SECONDS);
            long t0 = System.nanoTime();
            for (Thread t : threads) t.join(TimeUnit.NANOSECONDS.toMillis(left(deadline)) + 5000);
            double seconds = (System.nanoTime() - t0) / 1e9;
            Result r = new Result(seconds, lat, cpu0, n);
            for (Thread t : threads) if (t.isAlive()) throw new BenchFailure("incrementers did not finish");
            if (!errors.isEmpty()) throw new BenchFailure("incrementer failed: " + errors.get(0));
            AtomicValue<Long> v = counters.get(0).get();
            if (v.postValue() != n) throw new BenchFailure("final value " + v.postValue() + ", expected " + n);
            // each optimistic try is a getData + a versioned setData; > 1 per op means contention
            r.extra.put("tries_per_op", String.format("%.2f", (double) tries.get() / n));
            return r;
        } finally {
            for (CuratorFramework s : sessions) closeQuietly(s);
        }
    }

    // ------------------------------------------------------------------ output and main

    static String jsonStr(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') b.append('\\').append(ch);
            else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
        }
        return b.append('"').toString();
    }

    static void emit(String workload, int n, int clients, Result r, boolean ok, String error) {
        StringBuilder b = new StringBuilder("{");
        b.append("\"impl\":").append(jsonStr(IMPL));
        b.append(",\"workload\":").append(jsonStr(workload));
        b.append(",\"n\":").append(n);
        b.append(",\"clients\":").append(clients);
        if (r != null && r.seconds > 0) {
            b.append(",\"seconds\":").append(String.format("%.6f", r.seconds));
            b.append(",\"ops_per_sec\":").append(String.format("%.1f", n / r.seconds));
            b.append(",\"p50_us\":").append(pctUs(r.lat, 50));
            b.append(",\"p99_us\":").append(pctUs(r.lat, 99));
        } else {
            b.append(",\"seconds\":null,\"ops_per_sec\":null,\"p50_us\":null,\"p99_us\":null");
        }
        b.append(",\"ok\":").append(ok);
        if (error != null) b.append(",\"error\":").append(jsonStr(error));
        b.append(",\"client_cpu_us_per_op\":").append(r == null ? "null" : String.format("%.1f", r.cpuUsPerOp));
        if (r != null)
            for (Map.Entry<String, Object> e : r.extra.entrySet())
                b.append(",").append(jsonStr(e.getKey())).append(":").append(e.getValue());
        b.append("}");
        System.err.flush();
        System.out.println(b);
        System.out.flush();
    }

    static void usage() {
        System.err.println("usage: CuratorRecipeBench --zk HOST:PORT --workload NAME [--n N] [--clients C]"
                           + " [--payload BYTES] [--timeout SECONDS]");
        System.err.println("workloads: " + String.join(" ", DEFAULTS.keySet()));
    }

    public static void main(String[] args) {
        java.util.Locale.setDefault(java.util.Locale.ROOT);   // "." as the decimal separator
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null)
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        String zk = null, workload = null;
        int nArg = -1, clientsArg = -1, payloadLen = 128;
        double timeout = 300.0;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                int eq = a.indexOf('=');
                String k = eq > 0 ? a.substring(0, eq) : a;
                if (k.equals("-h") || k.equals("--help")) { usage(); System.exit(0); }
                String v;
                if (eq > 0) {
                    v = a.substring(eq + 1);
                } else {
                    if (i + 1 >= args.length) throw new IllegalArgumentException("missing value for " + k);
                    v = args[++i];
                }
                switch (k) {
                    case "--zk": zk = v; break;
                    case "--workload": workload = v; break;
                    case "--n": nArg = Integer.parseInt(v); break;
                    case "--clients": clientsArg = Integer.parseInt(v); break;
                    case "--payload": payloadLen = Integer.parseInt(v); break;
                    case "--timeout": timeout = Double.parseDouble(v); break;
                    default: throw new IllegalArgumentException("unknown option " + k);
                }
            }
        } catch (RuntimeException e) {
            System.err.println(e.getMessage());
            usage();
            System.exit(2);
        }
        if (zk == null || workload == null) { usage(); System.exit(2); }
        if (!DEFAULTS.containsKey(workload)) {
            emit(workload, Math.max(nArg, 0), 1, null, false, "unknown workload");
            System.exit(2);
        }
        int[] def = DEFAULTS.get(workload);
        int n = nArg > 0 ? nArg : def[0];
        // --clients only applies to the multi-session workload
        int clients = workload.equals("counter-increments") && clientsArg > 0 ? clientsArg : def[1];
        byte[] payload = new byte[Math.max(payloadLen, 0)];
        for (int i = 0; i < payload.length; i++) payload[i] = (byte) ('a' + i % 26);

        CuratorFramework c = null;
        Base baseDir = null;
        Result r = null;
        String error = null;
        try {
            c = connect(zk);
            baseDir = new Base(c);
            String base = baseDir.path;
            switch (workload) {
                case "tree-cache-load": r = treeCacheLoad(c, base, n, payload, timeout); break;
                case "tree-cache-propagation": r = treeCachePropagation(c, base, n, payload, timeout); break;
                case "service-lookup": r = serviceLookup(zk, c, base, n, timeout); break;
                default: r = counterIncrements(zk, base, n, clients, timeout); break;
            }
        } catch (BenchFailure e) {
            error = e.getMessage();
        } catch (Exception e) {
            error = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        if (baseDir != null) baseDir.remove(c);
        closeQuietly(c);
        boolean ok = error == null;
        emit(workload, n, clients, ok ? r : null, ok, error);
        System.exit(ok ? 0 : 1);
    }
}
