"""Copy one client's record back from a point-in-time restore of the table.

    python -m tools.restore_client --from studio-records-prod-restore-0412 --table <live table> \\
        --client-id 01J... [--dry-run] [--replace]

The whole item collection ``CLIENT#<id>`` (profile, notes, formulas, files,
history) is copied from the restored table into the live one:

- items the live table lacks, or holds differently, are put back as they were;
- items that exist only in the live table (written after the restore point) are
  kept, unless ``--replace`` deletes them, making the collection exactly the
  restored one;
- the profile gets a version above the live one, so the stream fans it out and
  every assigned pro's view and change feed follow (fan-out only writes views
  older than the profile);
- the book's uniqueness items (``BOOK#<owner>#PHONE#...`` / ``EMAIL``) for the
  restored contact details are put back when free; one that now names another
  client is reported and left alone (two clients would share a phone).

Member views (``PRO#<pro>`` partitions) are never copied: the stream rebuilds them.
Prints a JSON report; exit code 1 when a uniqueness item was in conflict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

Item = dict[str, Any]


def _collection(ddb: Any, table: str, client_id: str) -> dict[str, Item]:
    items: dict[str, Item] = {}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"CLIENT#{client_id}"}},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        for item in page["Items"]:
            items[item["sk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def restore_client(
    ddb: Any, source: str, table: str, client_id: str, *, dry_run: bool = False, replace: bool = False
) -> dict[str, Any]:
    restored = _collection(ddb, source, client_id)
    if "PROFILE" not in restored:
        raise SystemExit(f"client {client_id} has no profile in {source}: pick an earlier restore point")
    live = _collection(ddb, table, client_id)
    report: dict[str, Any] = {"client_id": client_id, "put": [], "deleted": [], "unique_conflicts": []}

    profile = dict(restored["PROFILE"])
    live_version = int(live.get("PROFILE", {}).get("version", {}).get("N", "0"))
    version = max(live_version, int(profile.get("version", {}).get("N", "0"))) + 1
    profile["version"] = {"N": str(version)}
    profile["updated_at"] = {"S": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    restored["PROFILE"] = profile

    puts = [item for sk, item in sorted(restored.items()) if live.get(sk) != item]
    deletes = sorted(set(live) - set(restored)) if replace else []
    owner = profile["owner"]["S"]
    uniques = []
    for field, kind in (("phone", "PHONE"), ("email", "EMAIL")):
        value = profile.get(field, {}).get("S")
        if not value:
            continue
        key = {"pk": {"S": f"BOOK#{owner}#{kind}#{value}"}, "sk": {"S": "UNIQUE"}}
        current = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if current is not None and current.get("client_id", {}).get("S") != client_id:
            report["unique_conflicts"].append({"field": field, "client_id": current["client_id"]["S"]})
        elif current is None:
            uniques.append({**key, "kind": {"S": "unique"}, "client_id": {"S": client_id}})

    report["put"] = [item["sk"]["S"] for item in puts] + [u["pk"]["S"].split("#")[-2] + " unique" for u in uniques]
    report["deleted"] = deletes
    report["profile_version"] = version
    if dry_run:
        return report
    # Everything but the profile first, so the profile's stream record finds the collection complete.
    for item in [i for i in puts if i["sk"]["S"] != "PROFILE"] + uniques:
        ddb.put_item(TableName=table, Item=item)
    for sk in deletes:
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": sk}})
    ddb.put_item(TableName=table, Item=profile)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="the table restored to a point in time")
    parser.add_argument("--table", required=True, help="the live records table")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    parser.add_argument("--replace", action="store_true", help="also delete items written after the restore point")
    parser.add_argument("--endpoint-url", help="an emulator, e.g. the local stack's http://127.0.0.1:4566")
    args = parser.parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    import boto3

    report = restore_client(
        boto3.client("dynamodb"), args.source, args.table, args.client_id, dry_run=args.dry_run, replace=args.replace
    )
    print(json.dumps(report, indent=2))
    return 1 if report["unique_conflicts"] else 0


if __name__ == "__main__":
    sys.exit(main())
