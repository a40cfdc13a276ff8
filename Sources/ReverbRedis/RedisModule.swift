// The Redis pub/sub client library; see RESP/, Connection/, PubSub/ and Settings/.
