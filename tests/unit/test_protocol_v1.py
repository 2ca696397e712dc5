"""Protocol v1 documents: what adapters receive and which replies are accepted."""

import pytest

from powerstrip.hooks import protocol_v1
from powerstrip.hooks.model import ClientRequest, ServerResponse

REQUEST = ClientRequest("POST", "/v1.41/containers/create?name=x", '{"Image": "a"}')
RESPONSE = ServerResponse(201, "application/json", '{"Id": "1"}')


def test_documents_match_the_clusterhq_wire_format():
    assert protocol_v1.pre_hook_document(REQUEST) == {
        "PowerstripProtocolVersion": 1, "Type": "pre-hook",
        "ClientRequest": {"Method": "POST", "Request": "/v1.41/containers/create?name=x", "Body": '{"Image": "a"}'}}
    post = protocol_v1.post_hook_document(REQUEST, RESPONSE)
    assert post["ServerResponse"] == {"ContentType": "application/json", "Body": '{"Id": "1"}', "Code": 201}


def test_a_clusterhq_era_reply_with_only_a_body_keeps_method_and_request():
    reply = {"PowerstripProtocolVersion": 1, "ModifiedClientRequest": {"Body": "{}"}}
    assert protocol_v1.parse_pre_hook_reply(reply, REQUEST) == ClientRequest(REQUEST.method, REQUEST.request, "{}")


def test_every_field_of_a_reply_is_applied():
    reply = {"ModifiedClientRequest": {"Method": "PUT", "Request": "/x?y=1", "Body": None}}
    assert protocol_v1.parse_pre_hook_reply(reply, REQUEST) == ClientRequest("PUT", "/x?y=1", None)
    reply = {"ModifiedServerResponse": {"Code": 418, "ContentType": "text/plain", "Body": "tea"}}
    assert protocol_v1.parse_post_hook_reply(reply, RESPONSE) == ServerResponse(418, "text/plain", "tea")


@pytest.mark.parametrize("reply", [
    [], {}, {"ModifiedClientRequest": {}}, {"ModifiedClientRequest": {"Body": 3}},
    {"ModifiedClientRequest": {"Body": "", "Method": "get"}},
    {"ModifiedClientRequest": {"Body": "", "Request": "no-slash"}},
    {"ModifiedClientRequest": {"Body": "", "Request": "/a b"}},
])
def test_invalid_pre_hook_replies_are_refused(reply):
    with pytest.raises(protocol_v1.InvalidReply):
        protocol_v1.parse_pre_hook_reply(reply, REQUEST)


@pytest.mark.parametrize("code", [99, 600, "200", True])
def test_invalid_codes_are_refused(code):
    with pytest.raises(protocol_v1.InvalidReply):
        protocol_v1.parse_post_hook_reply({"ModifiedServerResponse": {"Body": "", "Code": code}}, RESPONSE)
