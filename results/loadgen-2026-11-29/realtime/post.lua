wrk.method = "POST"
wrk.body = '{"inputs": {"shape": [4], "dtype": "f32", "data": [1, 2, 3, 4]}}'
wrk.headers["Content-Type"] = "application/json"
