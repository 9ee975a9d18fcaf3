from gateway.recorder.main import main

main()
