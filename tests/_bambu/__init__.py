"""Test helpers for the Bambu Lab watcher (issue 15): a simulated printer
(:mod:`_bambu.sim`), MQTT brokers the tests start themselves and their certificates
(:mod:`_bambu.brokers`), and a recording sink (:mod:`_bambu.sinks`)."""
