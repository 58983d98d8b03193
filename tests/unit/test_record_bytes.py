"""The record format is a contract (`docs/record-format.md`): for the same record, the stored
row and the hash are the same bytes whatever code writes them. These rows and hashes were written
by the pydantic `model_dump` serialisation the format was defined with; any faster writer must
keep writing them byte for byte.
"""

from __future__ import annotations

import pytest

from durable_graph.checkpoint import Checkpoint
from tests.unit.record_samples import records

PINNED = [
    (
        '{"actor":{"id":"w-1","kind":"system"},"changes":{"a":{"d":"1111111111111111111111111'
        '111111111111111111111111111111111111111","op":"set","s":"222222222222222222222222222'
        '22222","v":{"x":[1,2.5,"é",null,true],"y":1.0}},"big":{"d":"abababababababababababab'
        'abababababababababababababababababababab","op":"set","ref":{"content_type":"applicat'
        'ion/vnd.durable-graph.chunk+json","sha256":"abababababababababababababababababababab'
        'abababababababababababab","size":5000,"uri":"sha256/ab/cdef"}}},"created_at":"2026-0'
        '1-01T00:00:00.000000Z","format":2,"graph":{"name":"g","version":"0123456789abcdef"},'
        '"hash":"4444444444444444444444444444444444444444444444444444444444444444","next":[{"'
        'id":"0:draft","node":"draft"}],"root":"333333333333333333333333333333333333333333333'
        '3333333333333333333","route":[{"kind":"edge","result":["draft"],"source":"__start__"'
        '}],"source":"input","status":"running","step":0,"thread_id":"t-1"}',
        "981d23339db6a77acae012209c09450a00d0a81fab858c6ec2385186966d12a4",
    ),
    (
        '{"actor":{"id":"w-2","kind":"worker"},"anchor":1,"attempt":2,"changes":{"gone":{"op"'
        ':"del"},"kept":{"d":"abababababababababababababababababababababababababababababababa'
        'b","op":"keep","ref":{"content_type":"application/vnd.durable-graph.chunk+json","sha'
        '256":"abababababababababababababababababababababababababababababababab","size":5000,'
        '"uri":"sha256/ab/cdef"}},"m":{"d":"7777777777777777777777777777777777777777777777777'
        '777777777777777","e":"sealed-text","op":"merge"},"msgs":{"d":"5555555555555555555555'
        '555555555555555555555555555555555555555555","op":"add","s":"666666666666666666666666'
        '66666666","v":["hello",{"n":3,"role":"ai"}]}},"created_at":"2026-01-01T00:00:01.5000'
        '00Z","duration_ms":12.345,"format":2,"graph":{"name":"g","version":"0123456789abcdef'
        '"},"hash":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","interr'
        'upt":{"node":"review","payload":{"ask":"ok?"},"task_id":"1:review","when":"before"},'
        '"io":[{"kind":"record","name":"llm#1","request_sha256":"9999999999999999999999999999'
        '999999999999999999999999999999999999","response":{"body":"hi"},"response_sha256":"aa'
        'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","task_id":"0:draft"}'
        ',{"kind":"step","name":"send","response_sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
        'bbbbbbbbbbbbbbbbbbbbbbbbbbbbb","task_id":"0:draft"},{"kind":"record","name":"llm#2",'
        '"task_id":"0:draft"}],"io_in":{"2":["msgs",1]},"next":[{"arg":{"q":1},"done_at":1,"i'
        'd":"1:review","node":"review"},{"id":"1:b","node":"b"}],"nodes":["draft"],"prev_hash'
        '":"4444444444444444444444444444444444444444444444444444444444444444","resume":{"1:re'
        'view":[true,"yes"]},"root":"88888888888888888888888888888888888888888888888888888888'
        '88888888","route":[{"kind":"conditional","result":["review","b"],"router":"pick","so'
        'urce":"draft"}],"snap":{"content_type":"application/vnd.durable-graph.chunk+json","s'
        'ha256":"abababababababababababababababababababababababababababababababab","size":500'
        '0,"uri":"sha256/ab/cdef"},"source":"node","status":"suspended","step":1,"thread_id":'
        '"t-1"}',
        "d14f645e4ce156dcfabbafe1aa9bd4092655810bf1beb643d611eb1d56b4e3d8",
    ),
    (
        '{"actor":{"id":"b@x","kind":"human"},"created_at":"2026-01-01T00:00:04.000000Z","dur'
        'ation_ms":3.0,"error":{"attempts":3,"message":"it broke","node":"send","retryable":f'
        'alse,"task_id":"3:send","type":"Boom"},"format":2,"graph":{"name":"g","version":"012'
        '3456789abcdef"},"hash":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'
        'eeee","io_ref":{"content_type":"application/vnd.durable-graph.chunk+json","sha256":"'
        'abababababababababababababababababababababababababababababababab","size":5000,"uri":'
        '"sha256/ab/cdef"},"next_ref":{"content_type":"application/vnd.durable-graph.chunk+js'
        'on","sha256":"abababababababababababababababababababababababababababababababab","siz'
        'e":5000,"uri":"sha256/ab/cdef"},"parent":{"hash":"cccccccccccccccccccccccccccccccccc'
        'cccccccccccccccccccccccccccccc","step":1,"thread_id":"t-1"},"prev_hash":"ddddddddddd'
        'ddddddddddddddddddddddddddddddddddddddddddddddddddddd","signoff":{"approvals":[{"act'
        'or":{"id":"a@x","kind":"human"},"at":"2026-01-01T00:00:02.000000Z","email":"a@x","ke'
        'y":"k1","method":"oidc","via":"link:1"},{"actor":{"id":"b@x","kind":"human"},"at":"2'
        '026-01-01T00:00:03.000000Z","decision":"reject","key":"k2"}],"rule":{"approvals_requ'
        'ired":2,"requester_field":"owner","requester_may_approve":false,"sign_in_required":t'
        'rue}},"source":"fork","status":"failed","step":4,"thread_id":"t-2"}',
        "5dd74f4b350ba383d981d3470ddf935cc70a1e4a10903e3c7a8aed36fa0f9ed3",
    ),
    (
        '{"actor":{"id":"w-3","kind":"worker"},"created_at":"2026-01-01T00:00:05.000000Z","du'
        'ration_ms":1.25,"format":1,"graph":{"name":"g","version":"0123456789abcdef"},"hash":'
        '"0202020202020202020202020202020202020202020202020202020202020202","next":[{"id":"1:'
        'a","node":"a"}],"nodes":["a"],"parent":{"hash":"010101010101010101010101010101010101'
        '0101010101010101010101010101","step":0,"thread_id":"t-3"},"prev_hash":"0101010101010'
        '101010101010101010101010101010101010101010101010101","source":"node","status":"runni'
        'ng","step":1,"thread_id":"t-3","values":{"f":0.5,"n":2,"s":"xxx"}}',
        "6d3633d8b33b375ecbab25e88bc28550e0521490c093aabcca87c4b7708da8d3",
    ),
]


@pytest.mark.parametrize("index", range(len(PINNED)))
def test_a_record_stores_and_hashes_to_its_pinned_bytes(index: int) -> None:
    """Given a record with every field, then its row and hash are the pinned ones, and the row
    read back stores the same row and hashes the same."""
    record = records()[index]
    row, hashed = PINNED[index]
    assert record.to_stored_json() == row
    assert record.compute_hash() == hashed
    again = Checkpoint.from_stored_json(row)
    assert again.to_stored_json() == row
    assert again.with_io_restored().compute_hash() == hashed
