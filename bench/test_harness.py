"""Unit tests of the benchmark harness's wire encodings and peer configs (no servers,
no load): python3 -m unittest discover -s bench -p 'test_*.py'"""

import ipaddress
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class EcsOption(unittest.TestCase):
    def test_a_24_carries_three_address_bytes_and_zero_scope(self):
        self.assertEqual(harness.ecs_option("202.96.128.86", 24).hex(), "00011800ca6080")

    def test_a_32_carries_the_whole_address(self):
        self.assertEqual(harness.ecs_option("202.96.128.86", 32).hex(), "00012000ca608056")

    def test_bits_past_the_prefix_are_zeroed(self):
        self.assertEqual(harness.ecs_option("202.96.128.86", 20).hex(), "00011400ca6080")
        self.assertEqual(harness.ecs_option("202.96.128.86", 0).hex(), "00010000")

    def test_a_prefix_longer_than_ipv4_is_refused(self):
        with self.assertRaises(ValueError):
            harness.ecs_option("202.96.128.86", 33)

    def test_the_query_carries_the_option_in_an_opt_record(self):
        wire = harness.dns_query_ecs("api.example.com", "202.96.128.86", 24, qid=7)
        self.assertEqual(wire[:12].hex(), "000701000001000000000001")
        # OPT: root name, type 41, payload 1232, TTL 0, rdlen 11, option 8 length 7.
        opt = "00" "0029" "04d0" "00000000" "000b" "0008" "0007" "00011800ca6080"
        self.assertTrue(wire.endswith(bytes.fromhex(opt)), wire.hex())


class SteeringTable(unittest.TestCase):
    """gdnsd's nets map picks the longest prefix and dnsdist's ECS action the longest
    first, while httpdns's rules are first-match: the same only if no nets overlap."""

    def test_no_two_nets_overlap(self):
        nets = [(ipaddress.ip_network(n), rule) for rule, ns, _ in harness.STEERING for n in ns]
        for i, (a, ra) in enumerate(nets):
            for b, rb in nets[i + 1:]:
                self.assertFalse(a.overlaps(b), f"{a} ({ra}) overlaps {b} ({rb})")

    def test_the_bench_client_is_at_home_in_gz_telecom(self):
        self.assertEqual(harness.home_zone(harness.CLIENT_IP), "gz-telecom")
        self.assertEqual(harness.home_zone("14.31.255.1"), "gz-telecom")
        self.assertEqual(harness.home_zone("192.0.2.1"), harness.DEFAULT_ZONE)

    def test_the_prefix_table_finds_every_net(self):
        table = harness.steering_by_prefix()
        for _, nets, zone in harness.STEERING:
            for net in nets:
                n = ipaddress.ip_network(net)
                key = int(n.network_address) >> (32 - n.prefixlen)
                self.assertEqual(table[n.prefixlen][key], zone, net)


class PeerConfigs(unittest.TestCase):
    ips = {"gz-telecom": ["203.0.113.10", "203.0.113.11"], "sh-bgp": ["198.51.100.10"],
           "bj-unicom": ["192.0.2.10"], "hk-overseas": ["203.0.113.130"]}

    def test_gdnsd_maps_every_net_to_its_zone_and_defaults_to_the_default_zone(self):
        with tempfile.TemporaryDirectory() as d:
            harness.gdnsd_files(d, self.ips)
            with open(os.path.join(d, "config")) as f:
                config = f.read()
            with open(os.path.join(d, "zones", "example.com")) as f:
                zone = f.read()
        for _, nets, z in harness.STEERING:
            for net in nets:
                self.assertIn(f'{net} => [ "{z}" ]', config)
        self.assertIn(f'datacenters => [ "{harness.DEFAULT_ZONE}"', config)
        self.assertIn('"gz-telecom" => [ 203.0.113.10, 203.0.113.11 ]', config)
        self.assertIn("api 60 DYNA geoip!api", zone)

    def test_dnsdist_udp_spoofs_each_zone_on_its_tag(self):
        config = harness.dnsdist_udp_config(self.ips)
        self.assertIn("LuaFFIAction(tagZoneFromECS)", config)
        self.assertIn('TagRule("zone", "gz-telecom")}), '
                      'SpoofAction({"203.0.113.10", "203.0.113.11"}))', config)
        self.assertIn("[13262976]=\"gz-telecom\"", config)  # 202.96.128.0/24 >> 8


class DnsperfOutput(unittest.TestCase):
    text = """[Status] Sending queries (to 127.0.0.1:19503)
> NOERROR api.example.com A 0.000200
> NOERROR api.example.com A 0.000100
> SERVFAIL api.example.com A 0.000300
> T api.example.com A
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         4
  Queries completed:    3 (75.00%)
  Queries lost:         1 (25.00%)

  Response codes:       NOERROR 2 (66.67%), SERVFAIL 1 (33.33%)
  Average packet size:  request 55, response 92
  Run time (s):         2.000829
  Queries per second:   1.5

  Average Latency (s):  0.000200 (min 0.000100, max 0.000300)
"""

    def test_summary_and_percentiles_of_the_logged_latencies(self):
        r = harness.parse_dnsperf(self.text)
        self.assertEqual((r["sent"], r["completed"], r["lost"]), (4, 3, 1))
        self.assertEqual(r["rcodes"], {"NOERROR": 2, "SERVFAIL": 1})
        self.assertEqual(r["errors"], 2)  # one lost, one not NOERROR
        self.assertEqual(r["logged"], 3)
        self.assertAlmostEqual(r["p50_ms"], 0.2)
        self.assertAlmostEqual(r["p99_ms"], 0.3)
        self.assertEqual(r["rps"], 1.5)

    def test_no_summary_is_none(self):
        self.assertIsNone(harness.parse_dnsperf("dnsperf: connection refused\n"))


class HalfOfPeakRows(unittest.TestCase):
    """The fixed-rate rows show bench-paced's figures with h2load's burst p99 beside."""

    def test_paced_figures_with_the_h2load_burst_beside(self):
        results = {
            "date": "2026-11-27", "machine": "test", "commit": "abc", "loadavg": "0.1",
            "compilers_start": 0, "compilers_end": 0,
            "throughput": {"httpdns /resolve": {"h1_half": {"64": {
                "target_rps": 20000, "rps": 19990.0, "p50_ms": 0.05, "p99_ms": 0.8,
                "all_p99_ms": [1.2, 0.8, 0.4], "p999_ms": 3.0, "send_lag_p99_ms": 0.02, "server_cpu": 55.0,
                "h2load": {"rps": 20001.0, "p50_ms": 1.5, "p99_ms": 2.9, "p999_ms": 4.0,
                           "server_cpu": 60.0}}}}},
        }

        class Args:
            duration, conns, streams, rounds, round_duration = 10, 64, 4, 3, 6

        text = harness.report(results, Args())
        row = next(line for line in text.splitlines()
                   if line.startswith("| httpdns /resolve | 64 |"))
        self.assertEqual(row, "| httpdns /resolve | 64 | 20,000 | 19,990 | 0.050 | 0.800 | "
                              "1.200 / 0.800 / 0.400 | 3.000 | 0.020 | 55% | 1.500 / 2.900 |")

    def test_the_round_with_the_median_p99_is_kept_with_every_rounds_p99(self):
        burst = {"rps": 20001.0, "p99_ms": 2.9}
        runs = [{"rps": 1.0, "p99_ms": 1.5, "h2load": burst}, {"rps": 2.0, "p99_ms": 0.3},
                {"rps": 3.0, "p99_ms": 0.9}]
        kept = harness.median_latency(runs)
        self.assertEqual((kept["rps"], kept["p99_ms"]), (3.0, 0.9))
        self.assertEqual(kept["all_p99_ms"], [1.5, 0.3, 0.9])
        # The first round's h2load burst stays with the row whichever round is kept.
        self.assertEqual(kept["h2load"], burst)
        # A failed round counts as the slowest; with an even count the upper middle.
        failed = [{"error": "bench-paced failed"}, {"rps": 2.0, "p99_ms": 0.3}]
        self.assertEqual(harness.median_latency(failed)["error"], "bench-paced failed")
        self.assertEqual(harness.median_latency(runs[:1])["all_p99_ms"], [1.5])


class Rounds(unittest.TestCase):
    """Peak rows keep their median round, and the report lists every round."""

    def test_the_median_round_is_kept_with_every_rounds_rate(self):
        runs = [{"rps": 30.0, "p99_ms": 3.0}, {"error": "h2load failed"},
                {"rps": 50.0, "p99_ms": 1.0}, {"rps": 40.0, "p99_ms": 2.0}]
        self.assertEqual(harness.median_run(runs[:1]), {"rps": 30.0, "p99_ms": 3.0,
                                                        "all_rps": [30.0]})
        kept = harness.median_run([runs[0], runs[2], runs[3]])
        self.assertEqual((kept["rps"], kept["p99_ms"]), (40.0, 2.0))
        self.assertEqual(kept["all_rps"], [30.0, 50.0, 40.0])
        # Even count: the lower middle; a failed run counts as the slowest.
        self.assertEqual(harness.median_run(runs)["rps"], 30.0)

    def test_the_rounds_table_lists_each_round_in_order(self):
        t = {"httpdns /resolve": {"h1": {"rps": 40000.0, "all_rps": [30000.0, 50000.0, 40000.0]},
                                  "h2c": {"rps": 20000.0, "all_rps": [20000.0, None, 21000.0]}},
             "dnsdist DoH → PowerDNS LUA": None}
        self.assertEqual(harness.rounds_table(t), [
            "| q/s in each round (the row above is the median) | h1 | h2c |",
            "|---|---|---|",
            "| httpdns /resolve | 30.0k / 50.0k / 40.0k | 20.0k / — / 21.0k |",
            ""])
        self.assertEqual(harness.rounds_table({"x": {"h1": {"rps": 1.0, "all_rps": [1.0]}}}), [])


if __name__ == "__main__":
    unittest.main()
