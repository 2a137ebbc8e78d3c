module example.com/hookrelay-verify

go 1.19
