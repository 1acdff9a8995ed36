#!/usr/bin/env python3
"""The demo's live-scores feed: produces JSON score updates to Kafka, keyed by
endpoint key (live/football, live/tennis, live/basketball, results), a few per
second, until interrupted."""
import argparse
import json
import random
import signal
import time

from confluent_kafka import Producer

MATCHES = {
    "live/football": ["Lyon - Porto", "Ajax - Celtic", "Napoli - Sevilla"],
    "live/tennis": ["Sabalenka - Gauff", "Sinner - Alcaraz"],
    "live/basketball": ["Celtics - Lakers", "Real Madrid - Fenerbahce"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--brokers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="scores")
    parser.add_argument("--rate", type=float, default=4.0, help="messages per second")
    args = parser.parse_args()

    producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 5})
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    scores = {match: [0, 0] for matches in MATCHES.values() for match in matches}
    minute = 0
    while running:
        key = random.choice(list(MATCHES))
        match = random.choice(MATCHES[key])
        side = random.randrange(2)
        scores[match][side] += 1 if key != "live/basketball" else random.choice([1, 2, 3])
        minute = (minute + 1) % 90
        update = {"match": match, "score": "{}-{}".format(*scores[match]), "minute": minute,
                  "sent_ms": int(time.time() * 1000)}
        producer.produce(args.topic, key=key.encode(), value=json.dumps(update).encode())
        if random.random() < 0.1:
            results = {m: "{}-{}".format(*s) for m, s in scores.items()}
            producer.produce(args.topic, key=b"results", value=json.dumps(results).encode())
        producer.poll(0)
        time.sleep(1.0 / args.rate)
    producer.flush(5)


if __name__ == "__main__":
    main()
